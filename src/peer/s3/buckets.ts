import { isHousePartyError } from '../../shared/errors.ts'
import type { FileService } from '../files/index.ts'
import { S3Error } from './errors.ts'
import { BUCKETS_PREFIX, bucketFile, checkBucketName } from './names.ts'

export interface Bucket {
  name: string
  /** When the bucket was created (ms). */
  created: number
}

/** How long a peer trusts that a bucket it saw still exists: a bucket deleted elsewhere takes this long to be noticed here. */
const KNOWN_FOR_MS = 5_000
const MAX_KNOWN = 10_000

/**
 * Buckets are party state kept as ordinary files, one per bucket under
 * `.s3/buckets/`: erasure-coded, tracked, repaired and listed like any file,
 * so they survive what files survive. The file holds who created the bucket
 * and when; its record alone answers "does it exist" (one tracker lookup,
 * remembered for a few seconds so that an object request costs none).
 */
export class BucketStore {
  readonly #files: FileService
  readonly #now: () => number
  readonly #known = new Map<string, { bucket: Bucket; until: number }>()

  constructor(files: FileService, now: () => number = Date.now) {
    this.#files = files
    this.#now = now
  }

  /** The bucket, or NoSuchBucket. */
  async require(name: string, signal?: AbortSignal): Promise<Bucket> {
    const found = await this.find(name, signal)
    if (!found) throw new S3Error('NoSuchBucket', 'the specified bucket does not exist', { BucketName: name })
    return found
  }

  async find(name: string, signal?: AbortSignal): Promise<Bucket | undefined> {
    const known = this.#known.get(name)
    if (known && known.until > this.#now()) return known.bucket
    checkBucketName(name)
    try {
      const file = await this.#files.stat(bucketFile(name), signal)
      return this.#remember({ name, created: file.created })
    } catch (err) {
      if (isHousePartyError(err, 'ERR_FILE_NOT_FOUND')) {
        this.#known.delete(name)
        return undefined
      }
      throw err
    }
  }

  async create(name: string, owner: string, signal?: AbortSignal): Promise<Bucket> {
    checkBucketName(name)
    if (await this.find(name, signal))
      throw new S3Error('BucketAlreadyOwnedByYou', 'your previous request to create the named bucket succeeded and you already own it', { BucketName: name })
    const content = Buffer.from(JSON.stringify({ owner, created: this.#now() }))
    await this.#files.putBytes(bucketFile(name), content, signal)
    return this.#remember({ name, created: this.#now() })
  }

  /** Deletes an empty bucket; BucketNotEmpty while it holds any object. */
  async remove(name: string, signal?: AbortSignal): Promise<void> {
    await this.require(name, signal)
    const page = await this.#files.page({ prefix: `${name}/`, delimiter: '', after: '', token: '', limit: 1 }, signal)
    if (page.files.length > 0) throw new S3Error('BucketNotEmpty', 'the bucket you tried to delete is not empty', { BucketName: name })
    this.#known.delete(name)
    await this.#files.remove(bucketFile(name), signal)
  }

  /** Every bucket, in name order. */
  async list(signal?: AbortSignal): Promise<Bucket[]> {
    const out: Bucket[] = []
    for (let token = ''; ; ) {
      const page = await this.#files.page({ prefix: BUCKETS_PREFIX, delimiter: '/', after: '', token, limit: 1000 }, signal)
      for (const f of page.files) out.push({ name: f.name.slice(BUCKETS_PREFIX.length), created: f.created })
      if (!page.truncated || !page.next) return out
      token = page.next
    }
  }

  #remember(bucket: Bucket): Bucket {
    if (this.#known.size >= MAX_KNOWN) this.#known.clear()
    this.#known.set(bucket.name, { bucket, until: this.#now() + KNOWN_FOR_MS })
    return bucket
  }
}
