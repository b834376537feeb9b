import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { S3Error } from './errors.ts'

/**
 * AWS Signature Version 4, the server's side: the canonical request rebuilt
 * from what arrived, signed again with the key's secret, compared in
 * constant time. Pure functions over the request's parts; the HTTP layer
 * hands them in.
 */

export const ALGORITHM = 'AWS4-HMAC-SHA256'
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD'
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
/** How far a request's clock may be from ours (S3's own limit). */
export const MAX_SKEW_MS = 15 * 60_000
/** The longest a presigned URL may live: seven days, as in S3. */
export const MAX_PRESIGNED_SECONDS = 7 * 24 * 3600

export interface RequestParts {
  method: string
  /** The path as it arrived, still percent-encoded, without the query. */
  rawPath: string
  /** The query string as it arrived, without the "?". */
  rawQuery: string
  /** Node's rawHeaders: name, value, name, value… */
  rawHeaders: readonly string[]
}

export interface Scope {
  accessKey: string
  /** YYYYMMDD */
  date: string
  region: string
  service: string
}

export interface ParsedAuth {
  via: 'header' | 'query'
  scope: Scope
  signedHeaders: string[]
  signature: string
  /** YYYYMMDDTHHMMSSZ */
  amzDate: string
  /** x-amz-content-sha256 (header) or UNSIGNED-PAYLOAD (presigned). */
  payloadHash: string
  /** Presigned: seconds the URL stays valid from amzDate. */
  expires?: number
}

/** What a verified request lets the body decoder check its chunks with. */
export interface SigningContext {
  key: Buffer
  amzDate: string
  scopeText: string
  seedSignature: string
}

export function headerOf(rawHeaders: readonly string[], name: string): string | undefined {
  let found: string[] | undefined
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() !== name) continue
    found ??= []
    found.push(rawHeaders[i + 1] as string)
  }
  return found?.join(',')
}

/** The query as decoded pairs, in arrival order ("+" is a space, as browsers and SDKs mean it). */
export function queryPairs(rawQuery: string): [string, string][] {
  if (rawQuery === '') return []
  return rawQuery.split('&').map((part) => {
    const eq = part.indexOf('=')
    const [name, value] = eq < 0 ? [part, ''] : [part.slice(0, eq), part.slice(eq + 1)]
    return [decode(name), decode(value)]
  })
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text.replaceAll('+', ' '))
  } catch {
    throw new S3Error('InvalidArgument', 'the URL has a malformed percent-encoding')
  }
}

/** RFC 3986 encoding as SigV4 wants it: everything but A–Z a–z 0–9 - _ . ~ escaped. */
export function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/** Undefined for an anonymous request; throws on a malformed one. */
export function parseAuth(parts: RequestParts, query: readonly [string, string][]): ParsedAuth | undefined {
  const header = headerOf(parts.rawHeaders, 'authorization')
  const algorithm = query.find(([n]) => n === 'X-Amz-Algorithm')?.[1]
  if (header !== undefined && algorithm !== undefined) throw new S3Error('InvalidArgument', 'only one auth mechanism allowed: header or query')
  if (header !== undefined) return parseHeaderAuth(header, parts.rawHeaders)
  if (algorithm !== undefined) return parseQueryAuth(algorithm, query)
  return undefined
}

function parseHeaderAuth(header: string, rawHeaders: readonly string[]): ParsedAuth {
  if (header.startsWith('AWS ')) throw new S3Error('InvalidRequest', 'Signature Version 2 is not supported; use AWS4-HMAC-SHA256')
  if (!header.startsWith(`${ALGORITHM} `)) throw new S3Error('AuthorizationHeaderMalformed', `the authorization header must use ${ALGORITHM}`)
  const fields = new Map<string, string>()
  for (const item of header.slice(ALGORITHM.length + 1).split(',')) {
    const eq = item.indexOf('=')
    if (eq > 0) fields.set(item.slice(0, eq).trim(), item.slice(eq + 1).trim())
  }
  const credential = fields.get('Credential')
  const signed = fields.get('SignedHeaders')
  const signature = fields.get('Signature')
  if (!credential || !signed || !signature)
    throw new S3Error('AuthorizationHeaderMalformed', 'the authorization header needs Credential, SignedHeaders and Signature')
  const amzDate = headerOf(rawHeaders, 'x-amz-date') ?? amzDateOf(headerOf(rawHeaders, 'date'))
  const payloadHash = headerOf(rawHeaders, 'x-amz-content-sha256')
  if (payloadHash === undefined) throw new S3Error('InvalidRequest', 'missing required header for this request: x-amz-content-sha256')
  return { via: 'header', scope: parseScope(credential, 'AuthorizationHeaderMalformed'), signedHeaders: signed.split(';'), signature, amzDate, payloadHash }
}

function parseQueryAuth(algorithm: string, query: readonly [string, string][]): ParsedAuth {
  const get = (name: string): string => {
    const value = query.find(([n]) => n === name)?.[1]
    if (value === undefined || value === '') throw new S3Error('AuthorizationQueryParametersError', `the presigned URL lacks ${name}`)
    return value
  }
  if (algorithm !== ALGORITHM) throw new S3Error('AuthorizationQueryParametersError', `X-Amz-Algorithm must be ${ALGORITHM}`)
  const expires = Number(get('X-Amz-Expires'))
  if (!Number.isInteger(expires) || expires < 0 || expires > MAX_PRESIGNED_SECONDS)
    throw new S3Error('AuthorizationQueryParametersError', `X-Amz-Expires must be an integer from 0 to ${MAX_PRESIGNED_SECONDS}`)
  return {
    via: 'query',
    scope: parseScope(get('X-Amz-Credential'), 'AuthorizationQueryParametersError'),
    signedHeaders: get('X-Amz-SignedHeaders').split(';'),
    signature: get('X-Amz-Signature'),
    amzDate: get('X-Amz-Date'),
    payloadHash: UNSIGNED_PAYLOAD,
    expires,
  }
}

function parseScope(credential: string, code: 'AuthorizationHeaderMalformed' | 'AuthorizationQueryParametersError'): Scope {
  const parts = credential.split('/')
  if (parts.length !== 5 || parts[4] !== 'aws4_request' || !/^\d{8}$/.test(parts[1] as string))
    throw new S3Error(code, 'the credential must be ACCESSKEY/YYYYMMDD/REGION/s3/aws4_request')
  const [accessKey, date, region, service] = parts as [string, string, string, string]
  return { accessKey, date, region, service }
}

/** An HTTP Date header as YYYYMMDDTHHMMSSZ (SigV4 allows Date when x-amz-date is absent). */
function amzDateOf(date: string | undefined): string {
  const ms = date === undefined ? Number.NaN : Date.parse(date)
  if (Number.isNaN(ms)) throw new S3Error('AccessDenied', 'the request carries neither x-amz-date nor a valid Date header')
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '')
}

export function parseAmzDate(amzDate: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate)
  if (!m) throw new S3Error('AccessDenied', `malformed x-amz-date ${JSON.stringify(amzDate.slice(0, 40))}`)
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[]
  return Date.UTC(y as number, (mo as number) - 1, d, h, mi, s)
}

/**
 * Checks the request's time and signature against the key's secret; throws
 * the S3 error a client expects when either is wrong. Returns what the body
 * decoder needs to check a streamed body's chunk signatures.
 */
export function verifySignature(
  parts: RequestParts,
  query: readonly [string, string][],
  auth: ParsedAuth,
  secret: string,
  region: string,
  now: number,
): SigningContext {
  const { scope } = auth
  if (scope.service !== 's3') throw new S3Error('AuthorizationHeaderMalformed', `the credential is for service ${scope.service}, not s3`)
  if (scope.region !== region) throw new S3Error('AuthorizationHeaderMalformed', `the region ${scope.region} is wrong; expecting ${region}`, { Region: region })
  const signedAt = parseAmzDate(auth.amzDate)
  if (auth.amzDate.slice(0, 8) !== scope.date) throw new S3Error('SignatureDoesNotMatch', 'the credential date differs from x-amz-date')
  if (auth.via === 'query') {
    if (signedAt - now > MAX_SKEW_MS) throw new S3Error('AccessDenied', 'the presigned URL is not valid yet')
    if (now > signedAt + (auth.expires ?? 0) * 1000) throw new S3Error('AccessDenied', 'Request has expired')
  } else if (Math.abs(now - signedAt) > MAX_SKEW_MS) {
    throw new S3Error('RequestTimeTooSkewed', 'the difference between the request time and the server time is too large', {
      RequestTime: auth.amzDate,
      ServerTime: new Date(now).toISOString(),
      MaxAllowedSkewMilliseconds: String(MAX_SKEW_MS),
    })
  }
  if (!auth.signedHeaders.includes('host')) throw new S3Error('AccessDenied', 'the host header must be signed')
  const scopeText = `${scope.date}/${scope.region}/${scope.service}/aws4_request`
  const canonical = canonicalRequest(parts, query, auth)
  const toSign = `${ALGORITHM}\n${auth.amzDate}\n${scopeText}\n${sha256Hex(canonical)}`
  const key = signingKey(secret, scope)
  const expected = hmac(key, toSign).toString('hex')
  if (!sameHex(expected, auth.signature))
    throw new S3Error(
      'SignatureDoesNotMatch',
      'the request signature we calculated does not match the signature you provided; check your key and signing method',
    )
  return { key, amzDate: auth.amzDate, scopeText, seedSignature: auth.signature }
}

export function canonicalRequest(parts: RequestParts, query: readonly [string, string][], auth: ParsedAuth): string {
  const path = parts.rawPath
    .split('/')
    .map((segment) => uriEncode(decode(segment.replaceAll('+', '%2B'))))
    .join('/')
  const pairs = query
    .filter(([name]) => auth.via === 'header' || name !== 'X-Amz-Signature')
    .map(([n, v]) => [uriEncode(n), uriEncode(v)] as const)
    .sort(([an, av], [bn, bv]) => (an < bn ? -1 : an > bn ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([n, v]) => `${n}=${v}`)
    .join('&')
  const headers = auth.signedHeaders
    .map((name) => {
      const value = headerOf(parts.rawHeaders, name)
      if (value === undefined) throw new S3Error('AccessDenied', `the signed header ${name} is missing from the request`)
      return `${name}:${value.trim().replace(/\s+/g, ' ')}\n`
    })
    .join('')
  return `${parts.method}\n${path || '/'}\n${pairs}\n${headers}\n${auth.signedHeaders.join(';')}\n${auth.payloadHash}`
}

/** The signature of one chunk of a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body, chained from the previous one. */
export function chunkSignature(ctx: SigningContext, previous: string, chunkSha256: string): string {
  return hmac(ctx.key, `${ALGORITHM}-PAYLOAD\n${ctx.amzDate}\n${ctx.scopeText}\n${previous}\n${EMPTY_SHA256}\n${chunkSha256}`).toString('hex')
}

/** The signature over a streamed body's trailing headers. */
export function trailerSignature(ctx: SigningContext, previous: string, canonicalTrailers: string): string {
  return hmac(ctx.key, `${ALGORITHM}-TRAILER\n${ctx.amzDate}\n${ctx.scopeText}\n${previous}\n${sha256Hex(canonicalTrailers)}`).toString('hex')
}

/** Signing keys change once a day per key and region: cached, bounded. */
const keys = new Map<string, Buffer>()
const MAX_CACHED_KEYS = 1024

function signingKey(secret: string, scope: Scope): Buffer {
  const id = `${scope.date}/${scope.region}/${scope.service}/${secret}`
  let key = keys.get(id)
  if (!key) {
    key = hmac(hmac(hmac(hmac(`AWS4${secret}`, scope.date), scope.region), scope.service), 'aws4_request')
    if (keys.size >= MAX_CACHED_KEYS) keys.clear()
    keys.set(id, key)
  }
  return key
}

function hmac(key: string | Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest()
}

export function sha256Hex(text: string | Uint8Array): string {
  return createHash('sha256').update(text).digest('hex')
}

export function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8')
  const y = Buffer.from(b.toLowerCase(), 'utf8')
  return x.length === y.length && timingSafeEqual(x, y)
}
