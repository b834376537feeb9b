import { randomBytes } from 'node:crypto'
import { z } from 'zod'
import { HousePartyError, isHousePartyError } from '../../shared/errors.ts'
import type { FileService } from '../files/index.ts'
import { type SealedSecret, SecretSealer } from './sealing.ts'

/** What a key may do with one bucket: read (get, head, list), write (put, delete, uploads), owner (delete the bucket). */
export const RIGHTS = ['read', 'write', 'owner'] as const
export type Right = (typeof RIGHTS)[number]

/** The prefix S3 keys are kept under, one file each (beside the buckets, under .s3/). */
export const KEYS_PREFIX = '.s3/keys/'

const StoredKey = z.object({
  accessKeyId: z.string(),
  name: z.string().max(256),
  created: z.number(),
  secret: z.object({ iv: z.string(), tag: z.string(), data: z.string() }),
  createBucket: z.boolean(),
  buckets: z.record(z.string(), z.array(z.enum(RIGHTS))),
})
type StoredKey = z.infer<typeof StoredKey>

/** A key as `houseparty key ls` shows it: never its secret. */
export type KeyGrants = Omit<StoredKey, 'secret'>

/** Who signed a request, and what it may do. */
export interface Principal {
  accessKeyId: string
  secret: string
  /** The admin key of the peers' settings: every right on every bucket. */
  admin: boolean
  createBucket: boolean
  buckets: Record<string, Right[]>
}

/** How long a peer trusts a key it read: a key removed or changed elsewhere takes this long to be seen here. */
const KNOWN_FOR_MS = 5_000
const MAX_KNOWN = 10_000

export function checkAccessKeyId(id: string): string {
  if (!/^[A-Z0-9]{16,128}$/.test(id)) throw new HousePartyError('ERR_INVALID_ARGUMENT', 'an access key ID is 16 to 128 uppercase letters and digits')
  return id
}

/**
 * S3 access keys as party state: one small file per key under .s3/keys/,
 * coded and repaired like any file, its secret sealed under the party key
 * (SecretSealer). Rights are per bucket, as in Garage: read, write, owner.
 */
export class KeyStore {
  readonly #files: FileService
  readonly #sealer: SecretSealer | undefined
  readonly #admin: { accessKey: string; secret: string }
  readonly #now: () => number
  readonly #known = new Map<string, { principal: Principal; until: number }>()

  constructor(files: FileService, partyKey: Buffer | undefined, admin: { accessKey: string; secret: string }, now: () => number = Date.now) {
    this.#files = files
    this.#sealer = partyKey && partyKey.length > 0 ? new SecretSealer(partyKey) : undefined
    this.#admin = admin
    this.#now = now
  }

  /** The key that signed a request, or undefined for one the party does not know. */
  async lookup(accessKeyId: string, signal?: AbortSignal): Promise<Principal | undefined> {
    if (this.#admin.accessKey !== '' && accessKeyId === this.#admin.accessKey)
      return { accessKeyId, secret: this.#admin.secret, admin: true, createBucket: true, buckets: {} }
    if (!/^[A-Z0-9]{16,128}$/.test(accessKeyId) || !this.#sealer) return undefined
    const known = this.#known.get(accessKeyId)
    if (known && known.until > this.#now()) return known.principal
    const stored = await this.#read(accessKeyId, signal)
    if (!stored) return undefined
    const principal: Principal = {
      accessKeyId,
      secret: this.#sealer.open(accessKeyId, stored.secret),
      admin: false,
      createBucket: stored.createBucket,
      buckets: stored.buckets,
    }
    if (this.#known.size >= MAX_KNOWN) this.#known.clear()
    this.#known.set(accessKeyId, { principal, until: this.#now() + KNOWN_FOR_MS })
    return principal
  }

  /** A new key; its secret is returned here and never again. */
  async create(name: string, createBucket: boolean, signal?: AbortSignal): Promise<{ accessKeyId: string; secretAccessKey: string; name: string }> {
    const sealer = this.#requireSealer()
    const accessKeyId = newAccessKeyId()
    const secretAccessKey = randomBytes(30).toString('base64url')
    await this.#write({ accessKeyId, name, created: this.#now(), secret: sealer.seal(accessKeyId, secretAccessKey), createBucket, buckets: {} }, signal)
    return { accessKeyId, secretAccessKey, name }
  }

  async list(signal?: AbortSignal): Promise<KeyGrants[]> {
    const out: KeyGrants[] = []
    for (let token = ''; ; ) {
      const page = await this.#files.page({ prefix: KEYS_PREFIX, delimiter: '/', after: '', token, limit: 1000 }, signal)
      const read = await Promise.all(page.files.map((f) => this.#read(f.name.slice(KEYS_PREFIX.length), signal)))
      for (const k of read) if (k) out.push(grantsOf(k))
      if (!page.truncated || !page.next) return out
      token = page.next
    }
  }

  async get(accessKeyId: string, signal?: AbortSignal): Promise<KeyGrants> {
    return grantsOf(await this.#require(accessKeyId, signal))
  }

  async remove(accessKeyId: string, signal?: AbortSignal): Promise<void> {
    await this.#require(accessKeyId, signal)
    this.#known.delete(accessKeyId)
    await this.#files.remove(`${KEYS_PREFIX}${accessKeyId}`, signal)
  }

  /** Grants (or, with `allowed` false, takes back) rights on a bucket, and the right to create buckets. */
  async change(
    accessKeyId: string,
    change: { bucket?: string; rights?: Right[]; createBucket?: boolean },
    allowed: boolean,
    signal?: AbortSignal,
  ): Promise<KeyGrants> {
    const stored = await this.#require(accessKeyId, signal)
    if (change.bucket !== undefined) {
      const had = new Set(stored.buckets[change.bucket] ?? [])
      for (const r of change.rights ?? RIGHTS) {
        if (allowed) had.add(r)
        else had.delete(r)
      }
      if (had.size === 0) delete stored.buckets[change.bucket]
      else stored.buckets[change.bucket] = RIGHTS.filter((r) => had.has(r))
    }
    if (change.createBucket) stored.createBucket = allowed
    await this.#write(stored, signal)
    this.#known.delete(accessKeyId)
    return grantsOf(stored)
  }

  /** Forgets every key's rights on a bucket that is gone (a bucket made again later starts with none). */
  async forgetBucket(bucket: string, signal?: AbortSignal): Promise<void> {
    for (const key of await this.list(signal)) {
      if (!key.buckets[bucket]) continue
      await this.change(key.accessKeyId, { bucket }, false, signal)
    }
  }

  #requireSealer(): SecretSealer {
    if (!this.#sealer) throw new HousePartyError('ERR_INVALID_CONFIG', 'S3 keys are kept sealed under the party key: this peer runs without one (--insecure)')
    return this.#sealer
  }

  async #require(accessKeyId: string, signal?: AbortSignal): Promise<StoredKey> {
    checkAccessKeyId(accessKeyId)
    const stored = await this.#read(accessKeyId, signal)
    if (!stored) throw new HousePartyError('ERR_NOT_FOUND', `no S3 key ${accessKeyId}`)
    return stored
  }

  async #read(accessKeyId: string, signal?: AbortSignal): Promise<StoredKey | undefined> {
    try {
      return StoredKey.parse(JSON.parse((await this.#files.readBytes(`${KEYS_PREFIX}${accessKeyId}`, signal)).toString('utf8')))
    } catch (err) {
      if (isHousePartyError(err, 'ERR_FILE_NOT_FOUND')) return undefined
      throw err
    }
  }

  async #write(key: StoredKey, signal?: AbortSignal): Promise<void> {
    const content = Buffer.from(JSON.stringify(key))
    await this.#files.putBytes(`${KEYS_PREFIX}${key.accessKeyId}`, content, signal)
  }
}

function grantsOf(stored: StoredKey): KeyGrants {
  const { secret: _secret, ...grants } = stored
  return grants
}

/** An access key ID as S3 tools expect one: 20 uppercase letters and digits. */
export function newAccessKeyId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  return `HP${[...randomBytes(18)].map((b) => alphabet[b % 32]).join('')}`
}

export type { SealedSecret }
