import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Principal, Right } from '../keys/index.ts'
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm } from './checksums.ts'
import { decodeChunked } from './chunked.ts'
import { S3Error } from './errors.ts'
import { headerOf, parseAuth, queryPairs, type RequestParts, type SigningContext, UNSIGNED_PAYLOAD, verifySignature } from './sigv4.ts'

/** Who may sign requests: the key behind an access key ID, or undefined for one the party does not know. */
export interface Keyring {
  lookup(accessKeyId: string, signal?: AbortSignal): Promise<Principal | undefined>
}

/** One S3 request, its address resolved (bucket, key, sub-resources) and its signature verified. */
export interface S3Call {
  method: string
  bucket: string | undefined
  key: string | undefined
  query: Map<string, string>
  header(name: string): string | undefined
  accessKey: string
  principal: Principal
  signing: SigningContext
  /** x-amz-content-sha256 as sent (a hex digest, UNSIGNED-PAYLOAD or a STREAMING-… mode). */
  payloadHash: string
  raw: IncomingMessage
}

export interface AddressOptions {
  /** Virtual-host style: requests to BUCKET.<domain> address BUCKET. Empty: path style only. */
  domain: string
}

/** Splits a request into bucket, key and query (path style /BUCKET/KEY, or virtual host BUCKET.DOMAIN/KEY). */
export function addressOf(raw: IncomingMessage, options: AddressOptions): { parts: RequestParts; bucket?: string; key?: string; query: [string, string][] } {
  const url = raw.url ?? '/'
  const q = url.indexOf('?')
  const rawPath = q < 0 ? url : url.slice(0, q)
  const rawQuery = q < 0 ? '' : url.slice(q + 1)
  const parts: RequestParts = { method: raw.method ?? 'GET', rawPath, rawQuery, rawHeaders: raw.rawHeaders }
  const query = queryPairs(rawQuery)
  const path = decodePath(rawPath)
  const host = (headerOf(raw.rawHeaders, 'host') ?? '').toLowerCase().replace(/:\d+$/, '')
  const suffix = options.domain === '' ? undefined : `.${options.domain.toLowerCase()}`
  if (suffix && host.endsWith(suffix) && host.length > suffix.length) {
    const key = path.slice(1)
    return { parts, bucket: host.slice(0, -suffix.length), ...(key === '' ? {} : { key }), query }
  }
  const slash = path.indexOf('/', 1)
  const bucket = slash < 0 ? path.slice(1) : path.slice(1, slash)
  const key = slash < 0 ? '' : path.slice(slash + 1)
  return { parts, ...(bucket === '' ? {} : { bucket }), ...(key === '' ? {} : { key }), query }
}

function decodePath(rawPath: string): string {
  try {
    return decodeURIComponent(rawPath)
  } catch {
    throw new S3Error('InvalidArgument', 'the URL path has a malformed percent-encoding')
  }
}

/** Verifies the request's signature with its key's secret: AccessDenied for anonymous requests (no bucket is public). */
export async function authenticate(
  address: ReturnType<typeof addressOf>,
  keys: Keyring,
  region: string,
  now: () => number,
  signal?: AbortSignal,
): Promise<Pick<S3Call, 'accessKey' | 'principal' | 'signing' | 'payloadHash'>> {
  const auth = parseAuth(address.parts, address.query)
  if (!auth) throw new S3Error('AccessDenied', 'anonymous access is not allowed: sign requests with an access key')
  const principal = await keys.lookup(auth.scope.accessKey, signal)
  if (principal === undefined) throw new S3Error('InvalidAccessKeyId', 'the access key ID you provided does not exist in our records')
  const signing = verifySignature(address.parts, address.query, auth, principal.secret, region, now())
  return { accessKey: auth.scope.accessKey, principal, signing, payloadHash: auth.payloadHash }
}

/** Whether the request's key holds `right` on `bucket` (the admin key holds every right). */
export function may(principal: Principal, bucket: string, right: Right): boolean {
  return principal.admin || (principal.buckets[bucket]?.includes(right) ?? false)
}

/** AccessDenied unless the request's key holds `right` on `bucket`. */
export function authorize(call: Pick<S3Call, 'principal'>, bucket: string, right: Right): void {
  if (!may(call.principal, bucket, right)) throw new S3Error('AccessDenied', `this key has no ${right} right on bucket ${bucket}`)
}

/** A request body as the object's bytes: aws-chunked decoded (each chunk's signature checked), length checked. */
export interface ObjectBody {
  body: AsyncIterable<Uint8Array>
  /** The object's length when the request says it up front. */
  length: number | undefined
  /** sha256 hex the whole body must have (a signed, unstreamed payload). */
  sha256: string | undefined
  /** Checksums to compute, and the values declared for them (from headers, or trailers once the body has ended). */
  algorithms: Set<ChecksumAlgorithm>
  declared: () => Map<ChecksumAlgorithm, string>
}

/** The largest object one PutObject may carry (S3's limit; larger objects are uploaded in parts). */
export const MAX_PUT_BYTES = 5 * 1024 ** 3

export function objectBody(call: S3Call): ObjectBody {
  const { payloadHash } = call
  const contentLength = numberHeader(call, 'content-length')
  const streaming = payloadHash.startsWith('STREAMING-')
  const decodedLength = numberHeader(call, 'x-amz-decoded-content-length')
  const length = streaming ? decodedLength : contentLength
  if (length === undefined && call.header('transfer-encoding') === undefined)
    throw new S3Error('MissingContentLength', 'you must provide the Content-Length HTTP header')
  if (length !== undefined && length > MAX_PUT_BYTES) throw new S3Error('EntityTooLarge', 'your proposed upload exceeds the maximum allowed object size')
  const algorithms = new Set<ChecksumAlgorithm>()
  const fromHeaders = new Map<ChecksumAlgorithm, string>()
  for (const a of CHECKSUM_ALGORITHMS) {
    const value = call.header(`x-amz-checksum-${a}`)
    if (value !== undefined) {
      algorithms.add(a)
      fromHeaders.set(a, value)
    }
  }
  const trailerNames = (call.header('x-amz-trailer') ?? '')
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== '')
  for (const t of trailerNames) {
    const a = t.replace(/^x-amz-checksum-/, '') as ChecksumAlgorithm
    if (!t.startsWith('x-amz-checksum-') || !CHECKSUM_ALGORITHMS.includes(a)) throw new S3Error('NotImplemented', `the trailer ${t} is not supported`)
    algorithms.add(a)
  }
  const asked = (call.header('x-amz-sdk-checksum-algorithm') ?? call.header('x-amz-checksum-algorithm'))?.toLowerCase()
  if (asked !== undefined) {
    if (!CHECKSUM_ALGORITHMS.includes(asked as ChecksumAlgorithm)) throw new S3Error('NotImplemented', `the checksum algorithm ${asked} is not supported`)
    algorithms.add(asked as ChecksumAlgorithm)
  }
  for (const name of Object.keys(call.raw.headers))
    if (
      name.startsWith('x-amz-checksum-') &&
      name !== 'x-amz-checksum-algorithm' &&
      name !== 'x-amz-checksum-mode' &&
      name !== 'x-amz-checksum-type' &&
      !algorithms.has(name.slice(15) as ChecksumAlgorithm)
    )
      throw new S3Error('NotImplemented', `the checksum ${name.slice(15)} is not supported`)

  if (!streaming) {
    const sha256 = /^[0-9a-f]{64}$/.test(payloadHash) ? payloadHash : undefined
    if (sha256 === undefined && payloadHash !== UNSIGNED_PAYLOAD)
      throw new S3Error('InvalidArgument', `x-amz-content-sha256 ${JSON.stringify(payloadHash.slice(0, 80))} is not a payload hash`)
    return { body: sized(call.raw, contentLength), length, sha256, algorithms, declared: () => fromHeaders }
  }
  const mode = payloadHash
  const signed = mode === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD' || mode === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER'
  if (!signed && mode !== 'STREAMING-UNSIGNED-PAYLOAD-TRAILER') throw new S3Error('NotImplemented', `the payload mode ${mode} is not supported`)
  const decoded = decodeChunked(sized(call.raw, contentLength), {
    ...(signed ? { signing: call.signing } : {}),
    trailers: mode.endsWith('-TRAILER'),
    ...(decodedLength === undefined ? {} : { decodedLength }),
  })
  const declared = (): Map<ChecksumAlgorithm, string> => {
    const all = new Map(fromHeaders)
    for (const [name, value] of decoded.trailers) if (name.startsWith('x-amz-checksum-')) all.set(name.slice(15) as ChecksumAlgorithm, value)
    return all
  }
  return { body: decoded.body, length, sha256: undefined, algorithms, declared }
}

function numberHeader(call: S3Call, name: string): number | undefined {
  const text = call.header(name)
  if (text === undefined) return undefined
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < 0) throw new S3Error('InvalidArgument', `${name} must be a non-negative integer`)
  return n
}

/** The raw body, checked against Content-Length: a body that ends short fails instead of storing a truncated object. */
async function* sized(body: AsyncIterable<Uint8Array>, declared: number | undefined): AsyncGenerator<Uint8Array> {
  let got = 0
  for await (const piece of body) {
    got += piece.length
    if (declared !== undefined && got > declared) throw new S3Error('InvalidRequest', `the body is longer than its Content-Length ${declared}`)
    yield piece
  }
  if (declared !== undefined && got !== declared)
    throw new S3Error('IncompleteBody', `you did not provide the number of bytes specified by the Content-Length HTTP header (${got} of ${declared})`)
}

/** A small request body (XML) read whole, checked against its signed sha256 when there is one. */
export async function smallBody(call: S3Call, max: number): Promise<Buffer> {
  const body = objectBody(call)
  if (body.length !== undefined && body.length > max) throw new S3Error('EntityTooLarge', `the request body is larger than ${max} bytes`)
  const pieces: Uint8Array[] = []
  let size = 0
  for await (const piece of body.body) {
    size += piece.length
    if (size > max) throw new S3Error('EntityTooLarge', `the request body is larger than ${max} bytes`)
    pieces.push(piece)
  }
  const whole = Buffer.concat(pieces)
  if (body.sha256 !== undefined) {
    if (createHash('sha256').update(whole).digest('hex') !== body.sha256)
      throw new S3Error('XAmzContentSHA256Mismatch', 'the provided x-amz-content-sha256 header does not match what was computed')
  }
  const md5 = call.header('content-md5')
  if (md5 !== undefined) {
    if (createHash('md5').update(whole).digest('base64') !== md5) throw new S3Error('BadDigest', 'the Content-MD5 you specified did not match what we received')
  }
  return whole
}
