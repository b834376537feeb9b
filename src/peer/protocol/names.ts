import { HousePartyError } from '../../shared/errors.ts'

export const MAX_NAME_BYTES = 1024

/**
 * Names under this prefix hold the S3 API's state (buckets, keys, multipart uploads): ordinary files, readable
 * through the native API, but written only by the S3 API and `houseparty key`, so no native put or delete can
 * leave it inconsistent.
 */
export const S3_STATE_PREFIX = '.s3/'

/**
 * File names are keys, not paths: they are never used to build a path on
 * disk (the store files fragments under the name's sha256). They are still
 * held to path-like rules so that a name means the same thing everywhere it
 * is shown or exported: no NUL or control characters, no backslash, no
 * empty, "." or ".." segment, no leading slash, well-formed UTF-8 of at most
 * 1,024 bytes.
 */
export function checkName(name: unknown): string {
  const bad = (why: string): never => {
    throw new HousePartyError('ERR_BAD_NAME', `invalid file name: ${why}`, { details: { name: typeof name === 'string' ? name.slice(0, 200) : name } })
  }
  if (typeof name !== 'string') return bad('not a string')
  if (name.length === 0) return bad('empty')
  if (!name.isWellFormed()) return bad('not well-formed Unicode')
  const bytes = Buffer.byteLength(name, 'utf8')
  if (bytes > MAX_NAME_BYTES) return bad(`${bytes} bytes; at most ${MAX_NAME_BYTES}`)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(name)) return bad('contains a NUL or control character')
  if (name.includes('\\')) return bad('contains a backslash')
  if (name.startsWith('/')) return bad('starts with "/"')
  for (const segment of name.split('/')) {
    if (segment === '') return bad('has an empty path segment ("//" or a trailing "/")')
    if (segment === '.' || segment === '..') return bad(`has a "${segment}" segment`)
  }
  return name
}
