export { IDENTITY_FILE, type Identity, loadIdentity } from './identity.ts'
