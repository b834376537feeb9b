/**
 * The error catalogue. Every failure a user or a peer can see has a stable
 * code, a default message and the HTTP status the API answers with.
 * docs/errors.md lists the same codes; a unit test keeps the two in step.
 */
export const ERROR_CODES = {
  ERR_INVALID_CONFIG: { status: 400, message: 'invalid configuration' },
  ERR_INVALID_ARGUMENT: { status: 400, message: 'invalid argument' },
  ERR_BAD_NAME: { status: 400, message: 'invalid file name' },
  ERR_UNAUTHORIZED: { status: 401, message: 'missing or wrong API token' },
  ERR_TOO_MANY_FAILURES: { status: 429, message: 'too many failed authentications from this address; try again later' },
  ERR_NOT_FOUND: { status: 404, message: 'not found' },
  ERR_FILE_NOT_FOUND: { status: 404, message: 'no such file' },
  ERR_GUEST_NOT_FOUND: { status: 404, message: 'no such guest' },
  ERR_NOT_ADMITTED: { status: 503, message: 'this peer is not yet a guest of the party' },
  ERR_NOT_ENOUGH_PEERS: { status: 503, message: 'not enough live peers to place every fragment' },
  ERR_NOT_ENOUGH_FRAGMENTS: { status: 503, message: 'not enough fragments reachable to rebuild the file' },
  ERR_DRAINING: { status: 503, message: 'this peer is leaving the party and takes no new fragments' },
  ERR_LEAVING: { status: 503, message: 'this peer is leaving the party; ask another peer' },
  ERR_PARTY_UNREACHABLE: { status: 503, message: "the party's HTTP API did not answer" },
  ERR_TIMEOUT: { status: 504, message: 'operation timed out' },
  ERR_ABORTED: { status: 499, message: 'operation aborted' },
  ERR_EXISTS: { status: 409, message: 'the file exists' },
  ERR_DATA_DIR_LOCKED: { status: 409, message: 'the data dir is in use by another peer' },
  ERR_JOIN_REJECTED: { status: 409, message: 'the party refused this peer: a newer start of its identity holds its place' },
  ERR_JOIN_FAILED: { status: 503, message: 'could not join the party' },
  ERR_CHECKSUM_MISMATCH: { status: 502, message: 'data failed its checksum' },
  ERR_TRANSFER_FAILED: { status: 502, message: 'fragment transfer failed' },
  ERR_PROTOCOL: { status: 502, message: 'protocol violation' },
  ERR_KUBERNETES_API: { status: 502, message: 'the Kubernetes API server answered with an error' },
  ERR_INTERNAL: { status: 500, message: 'internal error' },
} as const satisfies Record<string, { status: number; message: string }>

export type ErrorCode = keyof typeof ERROR_CODES

/** The one error class of House Party: the code says what failed. */
export class HousePartyError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly details: Record<string, unknown> | undefined

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message ?? ERROR_CODES[code].message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'HousePartyError'
    this.code = code
    this.status = ERROR_CODES[code].status
    this.details = options?.details
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, details: this.details }
  }
}

export function isHousePartyError(err: unknown, code?: ErrorCode): err is HousePartyError {
  return err instanceof HousePartyError && (code === undefined || err.code === code)
}

/** Wraps anything thrown into a HousePartyError so callers always see a code. */
export function toHousePartyError(err: unknown): HousePartyError {
  if (err instanceof HousePartyError) return err
  if (err instanceof Error && err.name === 'AbortError') return new HousePartyError('ERR_ABORTED', err.message, { cause: err })
  if (err instanceof Error && err.name === 'TimeoutError') return new HousePartyError('ERR_TIMEOUT', err.message, { cause: err })
  return new HousePartyError('ERR_INTERNAL', err instanceof Error ? err.message : String(err), { cause: err })
}
