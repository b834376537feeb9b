export { S3_ERRORS, S3Error, type S3ErrorCode } from './errors.ts'
export { adminKeyring, type Keyring } from './request.ts'
export { createS3Server, type S3Options } from './server.ts'
