import { checkName, MAX_NAME_BYTES, S3_STATE_PREFIX } from '../protocol/index.ts'
import { S3Error } from './errors.ts'

/** One file per bucket, under a prefix no bucket name can take. */
export { S3_STATE_PREFIX }
export const BUCKETS_PREFIX = `${S3_STATE_PREFIX}buckets/`

/**
 * S3's bucket naming rules (the current ones, for new buckets): 3–63
 * characters of lowercase letters, digits, dots and hyphens, starting and
 * ending with a letter or digit, no two adjacent dots, not an IP address.
 */
export function checkBucketName(bucket: string): string {
  const bad = (why: string): never => {
    throw new S3Error('InvalidBucketName', `the specified bucket is not valid: ${why}`, { BucketName: bucket.slice(0, 100) })
  }
  if (bucket.length < 3 || bucket.length > 63) bad('a bucket name has 3 to 63 characters')
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(bucket)) bad('lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit')
  if (bucket.includes('..')) bad('two adjacent dots')
  if (/^\d+\.\d+\.\d+\.\d+$/.test(bucket)) bad('formatted as an IP address')
  return bucket
}

/** The file an object is: `BUCKET/KEY`, so the native API and the CLI see the same data. */
export function fileOf(bucket: string, key: string): string {
  if (key === '') throw new S3Error('InvalidArgument', 'an object key cannot be empty')
  const name = `${bucket}/${key}`
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new S3Error('KeyTooLongError', `bucket and key together are longer than ${MAX_NAME_BYTES} bytes`)
  try {
    return checkName(name)
  } catch (err) {
    // House Party's names are path-like (no "//", no trailing "/", no "." or ".." segment): say which rule.
    throw new S3Error('InvalidArgument', `object key not supported: ${(err as Error).message.replace(/^invalid file name: /, '')}`)
  }
}

export function bucketFile(bucket: string): string {
  return `${BUCKETS_PREFIX}${bucket}`
}
