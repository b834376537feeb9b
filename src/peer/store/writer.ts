import type { FileHandle } from 'node:fs/promises'
import { unlink } from 'node:fs/promises'
import { HousePartyError } from '../../shared/errors.ts'
import { chunkBytes, chunkChecksum, fragmentDigest, shardBytes, stripeCount } from '../codec/index.ts'
import type { Coding, HeldFragment, HoldTrailer, Manifest, Version } from '../protocol/index.ts'
import type { ChunkSealer } from './at-rest.ts'

/** Which fragment: one index of one version of a file. */
export interface FragmentKey {
  name: string
  version: Version
  index: number
}

/** Where a committed fragment goes: the store moves it into place and lists it. */
export interface FragmentInstaller {
  /** `seal`: the salt and tags of a fragment encrypted at rest (see at-rest.ts). */
  install(manifest: Manifest, tmp: string, bytes: number, seal?: Buffer): Promise<HeldFragment>
}

export interface AppendOptions {
  /** Runs once the writer no longer needs the chunk's bytes. */
  written?: () => void
  /** The digest was just computed from these very bytes in this process (a local put), so it is not recomputed. */
  checked?: boolean
}

const WRITE_BEHIND = 8 * 1024 * 1024
/**
 * Bytes after which a background datasync starts while more chunks arrive:
 * the disk writes the fragment as it streams in, instead of all of it in
 * the fsync at commit, which the sender would wait for.
 */
const SYNC_EVERY = 32 * 1024 * 1024

/**
 * One fragment being received: chunks are checked against their CRC-32 as
 * they arrive and appended to a temporary file.
 */
export class FragmentWriter {
  readonly #store: FragmentInstaller
  readonly #key: FragmentKey
  readonly #coding: Coding
  readonly #tmp: string
  readonly #handle: FileHandle
  readonly #chunks: string[] = []
  readonly #lengths: number[] = []
  #bytes = 0
  #closed = false
  /** Disk writes run behind the network: up to WRITE_BEHIND bytes are queued, in order, while the next chunks arrive. */
  #writing: Promise<void> = Promise.resolve()
  #unwritten = 0
  #writeError: Error | undefined
  /** Chunk buffers whose disk write is done, for the next chunks: a large fragment cycles through a write-behind's worth instead of allocating one per chunk. */
  readonly #spare: Buffer[] = []
  readonly #lent = new WeakSet<Buffer>()
  #unsynced = 0
  /** The background datasync in flight, if any (at most one). */
  #syncing: Promise<void> | undefined

  /** Tells the store this write is over (committed or aborted): a graceful leave waits for open writes before its last listing. */
  readonly #ended: () => void
  /** Encrypts each chunk before it goes to disk, when the volume is encrypted at rest. */
  readonly #sealer: ChunkSealer | undefined

  constructor(store: FragmentInstaller, key: FragmentKey, coding: Coding, tmp: string, handle: FileHandle, ended: () => void = () => {}, sealer?: ChunkSealer) {
    this.#sealer = sealer
    this.#store = store
    this.#key = key
    this.#coding = coding
    this.#tmp = tmp
    this.#handle = handle
    this.#ended = ended
  }

  get bytes(): number {
    return this.#bytes
  }

  /** A buffer of `length` bytes to receive the next chunk into; append() takes it back. */
  buffer(length: number): Buffer {
    const spare = this.#spare.pop()
    const buf = spare && spare.length === length ? spare : Buffer.allocUnsafe(length)
    this.#lent.add(buf)
    return buf
  }

  /**
   * Checks one chunk and queues it for disk. `written` runs once the writer
   * no longer needs `data` (written, or failed); without it, a buffer from
   * buffer() comes back to the writer for the next chunks.
   */
  async append(data: Buffer, digest: Buffer, options: AppendOptions = {}): Promise<void> {
    const { written, checked = false } = options
    const release = (): void => {
      if (written) written()
      else if (this.#lent.has(data) && this.#spare.length * data.length < WRITE_BEHIND) this.#spare.push(data)
    }
    const failure = this.#check(data, checked ? undefined : digest) ?? this.#writeError
    if (failure) {
      release()
      throw failure
    }
    const position = this.#bytes
    // Sealed now, in order: the plaintext goes back to its owner at once, the ciphertext to disk.
    const out = this.#sealer ? this.#sealer.sealChunk(this.#chunks.length, data) : data
    if (out !== data) release()
    this.#unwritten += data.length
    this.#writing = this.#writing.then(async () => {
      try {
        if (!this.#writeError) {
          await this.#handle.write(out, 0, out.length, position)
          this.#syncInBackground(data.length)
        }
      } catch (err) {
        this.#writeError = err as Error
      } finally {
        this.#unwritten -= data.length
        if (out === data) release()
      }
    })
    this.#chunks.push(digest.toString('hex'))
    this.#lengths.push(data.length)
    this.#bytes += data.length
    if (this.#unwritten > WRITE_BEHIND) await this.#writing
    if (this.#writeError) throw this.#writeError
  }

  #syncInBackground(written: number): void {
    this.#unsynced += written
    if (this.#unsynced < SYNC_EVERY || this.#syncing) return
    this.#unsynced = 0
    this.#syncing = this.#handle
      .datasync()
      .catch((err: Error) => {
        this.#writeError ??= err
      })
      .finally(() => {
        this.#syncing = undefined
      })
  }

  #check(data: Buffer, digest: Buffer | undefined): HousePartyError | undefined {
    if (data.length > shardBytes(this.#coding.stripeBytes, this.#coding.k))
      return new HousePartyError('ERR_PROTOCOL', `chunk of ${data.length} bytes is larger than a shard`)
    if (digest && !chunkChecksum(data).equals(digest))
      return new HousePartyError('ERR_CHECKSUM_MISMATCH', `chunk ${this.#chunks.length} of fragment ${this.#key.index} failed its checksum in transit`)
    return undefined
  }

  /** Checks the whole fragment against the sender's authenticated trailer, makes it durable and visible. */
  async commit(trailer: HoldTrailer): Promise<HeldFragment> {
    try {
      return await this.#commit(trailer)
    } finally {
      this.#ended()
    }
  }

  async #commit(trailer: HoldTrailer): Promise<HeldFragment> {
    const layout = this.#coding
    const stripes = stripeCount(trailer.size, layout)
    if (stripes !== this.#chunks.length)
      throw new HousePartyError('ERR_PROTOCOL', `got ${this.#chunks.length} chunks, a ${trailer.size}-byte file has ${stripes}`)
    for (let s = 0; s < stripes; s++) {
      if (this.#lengths[s] !== chunkBytes(trailer.size, layout, s)) throw new HousePartyError('ERR_PROTOCOL', `chunk ${s} has the wrong length`)
    }
    if (fragmentDigest(this.#chunks) !== trailer.digest) throw new HousePartyError('ERR_CHECKSUM_MISMATCH', 'fragment digest does not match the trailer')
    await this.#writing
    await this.#syncing
    if (this.#writeError) throw this.#writeError
    await this.#handle.sync()
    await this.#handle.close()
    this.#closed = true
    const manifest: Manifest = {
      name: this.#key.name,
      version: this.#key.version,
      size: trailer.size,
      hash: trailer.hash,
      created: trailer.created,
      coding: layout,
      index: this.#key.index,
      chunks: this.#chunks,
    }
    return this.#store.install(manifest, this.#tmp, this.#bytes, this.#sealer?.seal())
  }

  async abort(): Promise<void> {
    this.#ended()
    await this.#writing
    await this.#syncing
    if (!this.#closed) await this.#handle.close().catch(() => undefined)
    this.#closed = true
    await unlink(this.#tmp).catch(() => undefined)
  }
}
