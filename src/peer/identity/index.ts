export { IDENTITY_FILE, type Identity, loadIdentity } from './identity.ts'
export { DataDirLock, inspectLock, LOCK_FILE, lockHolder } from './lock.ts'
