import { type ErrorCode, isHousePartyError } from '../../shared/errors.ts'

/**
 * The S3 error codes this endpoint answers with, each with its status (as
 * AWS documents them: clients branch on the code, and retry on the status).
 */
export const S3_ERRORS = {
  AccessDenied: 403,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  BadDigest: 400,
  BucketAlreadyExists: 409,
  BucketAlreadyOwnedByYou: 409,
  BucketNotEmpty: 409,
  EntityTooLarge: 400,
  EntityTooSmall: 400,
  IncompleteBody: 400,
  InternalError: 500,
  InvalidAccessKeyId: 403,
  InvalidArgument: 400,
  InvalidBucketName: 400,
  InvalidDigest: 400,
  InvalidPart: 400,
  InvalidPartOrder: 400,
  InvalidRange: 416,
  InvalidRequest: 400,
  KeyTooLongError: 400,
  MalformedXML: 400,
  MetadataTooLarge: 400,
  MethodNotAllowed: 405,
  MissingContentLength: 411,
  NoSuchBucket: 404,
  NoSuchKey: 404,
  NoSuchUpload: 404,
  NotImplemented: 501,
  PreconditionFailed: 412,
  RequestTimeTooSkewed: 403,
  ServiceUnavailable: 503,
  SignatureDoesNotMatch: 403,
  SlowDown: 503,
  XAmzContentSHA256Mismatch: 400,
} as const satisfies Record<string, number>

export type S3ErrorCode = keyof typeof S3_ERRORS

/** An error as S3 answers it: the code clients branch on, its status, a message for people. */
export class S3Error extends Error {
  readonly code: S3ErrorCode
  readonly status: number
  /** Extra elements of the error document (e.g. the Region an AuthorizationHeaderMalformed expected). */
  readonly extra: Record<string, string>

  constructor(code: S3ErrorCode, message: string, extra: Record<string, string> = {}) {
    super(message)
    this.name = 'S3Error'
    this.code = code
    this.status = S3_ERRORS[code]
    this.extra = extra
  }
}

/** The file layer's errors in S3's words; anything unexpected is an InternalError. */
const FROM_HOUSEPARTY: Partial<Record<ErrorCode, S3ErrorCode>> = {
  ERR_BAD_NAME: 'InvalidArgument',
  ERR_INVALID_ARGUMENT: 'InvalidArgument',
  ERR_FILE_NOT_FOUND: 'NoSuchKey',
  ERR_NOT_ADMITTED: 'ServiceUnavailable',
  ERR_NOT_ENOUGH_PEERS: 'ServiceUnavailable',
  ERR_NOT_ENOUGH_FRAGMENTS: 'ServiceUnavailable',
  ERR_DRAINING: 'ServiceUnavailable',
  ERR_LEAVING: 'ServiceUnavailable',
  ERR_TIMEOUT: 'SlowDown',
  ERR_TRANSFER_FAILED: 'IncompleteBody',
  ERR_CHECKSUM_MISMATCH: 'InternalError',
}

export function toS3Error(err: unknown): S3Error {
  if (err instanceof S3Error) return err
  if (isHousePartyError(err)) {
    const code = FROM_HOUSEPARTY[err.code] ?? 'InternalError'
    // A transfer that failed between peers is the party's trouble, not an incomplete body from the client.
    if (err.code === 'ERR_TRANSFER_FAILED' && !/upload ended after/.test(err.message)) return new S3Error('InternalError', err.message)
    return new S3Error(code, err.message)
  }
  return new S3Error('InternalError', err instanceof Error ? err.message : String(err))
}
