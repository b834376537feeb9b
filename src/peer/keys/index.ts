export { SecretSealer } from './sealing.ts'
export { checkAccessKeyId, KEYS_PREFIX, type KeyGrants, KeyStore, newAccessKeyId, type Principal, RIGHTS, type Right } from './store.ts'
