import type { FastifyReply } from 'fastify'
import { type FileRecord, MAX_USER_META_BYTES, type ObjectMeta } from '../protocol/index.ts'
import { S3Error } from './errors.ts'
import type { S3Call } from './request.ts'

/** Object headers kept as they were sent and served back, by their ObjectMeta field. */
const KEPT_HEADERS = [
  ['content-type', 'contentType'],
  ['cache-control', 'cacheControl'],
  ['content-disposition', 'contentDisposition'],
  ['content-encoding', 'contentEncoding'],
  ['content-language', 'contentLanguage'],
  ['expires', 'expires'],
] as const

/** Request headers that would ask for something this endpoint does not do: refused, never ignored. */
const REFUSED_HEADERS: Record<string, (value: string) => boolean> = {
  'x-amz-acl': (v) => v !== 'private',
  'x-amz-storage-class': (v) => v !== 'STANDARD',
  'x-amz-server-side-encryption': () => true,
  'x-amz-server-side-encryption-customer-algorithm': () => true,
  'x-amz-tagging': () => true,
  'x-amz-object-lock-mode': () => true,
  'x-amz-object-lock-retain-until-date': () => true,
  'x-amz-object-lock-legal-hold': () => true,
  'x-amz-website-redirect-location': () => true,
  'x-amz-grant-read': () => true,
  'x-amz-grant-full-control': () => true,
  'if-match': () => true,
  'if-none-match': () => true,
}

/** What an uploaded object carries beside its bytes, from its request's headers. */
export function metaFromRequest(call: S3Call): ObjectMeta {
  for (const [name, refused] of Object.entries(REFUSED_HEADERS)) {
    const value = call.header(name)
    if (value !== undefined && refused(value)) throw new S3Error('NotImplemented', `the header ${name}: ${value.slice(0, 60)} is not supported`)
  }
  const meta: ObjectMeta = {}
  for (const [header, field] of KEPT_HEADERS) {
    let value = call.header(header)
    // aws-chunked describes how this request's body was sent, not the object.
    if (header === 'content-encoding' && value !== undefined)
      value =
        value
          .split(',')
          .map((v) => v.trim())
          .filter((v) => v !== '' && v !== 'aws-chunked')
          .join(', ') || undefined
    if (value !== undefined) meta[field] = value
  }
  const user = userMeta(call.raw.headers)
  if (user) meta.user = user
  return meta
}

/** x-amz-meta-* headers, names lowercased as S3 keeps them; MetadataTooLarge past S3's 2 KB. */
export function userMeta(headers: Record<string, string | string[] | undefined>): Record<string, string> | undefined {
  let user: Record<string, string> | undefined
  let bytes = 0
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith('x-amz-meta-') || value === undefined) continue
    const key = name.slice('x-amz-meta-'.length)
    const text = Array.isArray(value) ? value.join(',') : value
    bytes += Buffer.byteLength(key) + Buffer.byteLength(text)
    user ??= {}
    user[key] = text
  }
  if (bytes > MAX_USER_META_BYTES)
    throw new S3Error('MetadataTooLarge', `your metadata headers exceed the maximum allowed metadata size (${MAX_USER_META_BYTES} bytes)`)
  return user
}

/** The object's ETag as S3 quotes it: its MD5 (or multipart ETag); a file put natively shows its sha256. */
export function etagOf(record: Pick<FileRecord, 'hash' | 'meta'>): string {
  return `"${record.meta?.etag ?? record.hash}"`
}

/** HTTP dates have second precision: conditional requests compare on whole seconds. */
export function lastModifiedSeconds(record: Pick<FileRecord, 'created'>): number {
  return Math.floor(record.created / 1000)
}

/** The headers of GetObject and HeadObject; `response-*` query parameters override the stored ones (presigned downloads). */
export function writeObjectHeaders(reply: FastifyReply, call: S3Call, record: FileRecord, withChecksums: boolean): void {
  const meta = record.meta ?? {}
  void reply
    .header('etag', etagOf(record))
    .header('last-modified', new Date(record.created).toUTCString())
    .header('accept-ranges', 'bytes')
    .header('content-type', meta.contentType ?? 'binary/octet-stream')
  for (const [header, field] of KEPT_HEADERS) {
    const value = meta[field]
    if (value !== undefined && header !== 'content-type') void reply.header(header, value)
  }
  for (const [key, value] of Object.entries(meta.user ?? {})) void reply.header(`x-amz-meta-${key}`, value)
  for (const header of ['content-type', 'content-language', 'expires', 'cache-control', 'content-disposition', 'content-encoding']) {
    const override = call.query.get(`response-${header}`)
    if (override !== undefined) void reply.header(header, override)
  }
  if (withChecksums && call.header('x-amz-checksum-mode')?.toUpperCase() === 'ENABLED')
    for (const [algorithm, value] of Object.entries(meta.checksums ?? {})) void reply.header(`x-amz-checksum-${algorithm}`, value)
}

/**
 * The conditional headers of a read, in RFC 9110's order: If-Match, then
 * If-Unmodified-Since (when If-Match is absent); If-None-Match, then
 * If-Modified-Since (when If-None-Match is absent). 'not-modified' is a 304.
 */
export function evaluateConditions(get: (name: string) => string | undefined, record: FileRecord, prefix = ''): 'ok' | 'not-modified' | 'failed' {
  const etag = etagOf(record)
  const matches = (list: string): boolean =>
    list
      .split(',')
      .map((t) => t.trim())
      .some((t) => t === '*' || t === etag || `"${t}"` === etag)
  const seconds = lastModifiedSeconds(record)
  const dateOf = (text: string | undefined): number | undefined => {
    const ms = text === undefined ? Number.NaN : Date.parse(text)
    return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000)
  }
  const ifMatch = get(`${prefix}if-match`)
  if (ifMatch !== undefined && !matches(ifMatch)) return 'failed'
  const unmodifiedSince = dateOf(get(`${prefix}if-unmodified-since`))
  if (ifMatch === undefined && unmodifiedSince !== undefined && seconds > unmodifiedSince) return 'failed'
  const ifNoneMatch = get(`${prefix}if-none-match`)
  if (ifNoneMatch !== undefined && matches(ifNoneMatch)) return 'not-modified'
  const modifiedSince = dateOf(get(`${prefix}if-modified-since`))
  if (ifNoneMatch === undefined && modifiedSince !== undefined && seconds <= modifiedSince) return 'not-modified'
  return 'ok'
}

/** A single `Range: bytes=…` as [first, last] inclusive, undefined for none; InvalidRange when it cannot be satisfied. */
export function parseRange(header: string | undefined, size: number): [number, number] | undefined {
  if (header === undefined) return undefined
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  // Several ranges, or another unit: S3 serves the whole object, as RFC 9110 allows.
  if (!m || (m[1] === '' && m[2] === '')) return undefined
  const unsatisfiable = (): never => {
    throw new S3Error('InvalidRange', 'the requested range is not satisfiable', { RangeRequested: header, ActualObjectSize: String(size) })
  }
  if (m[1] === '') {
    const suffix = Number(m[2])
    if (suffix === 0 || size === 0) return unsatisfiable()
    return [Math.max(0, size - suffix), size - 1]
  }
  const first = Number(m[1])
  if (first >= size) return unsatisfiable()
  const last = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  if (last < first) return undefined
  return [first, last]
}
