import type { FileHandle } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { HousePartyError } from '../../shared/errors.ts'
import { chunkBytes, chunkChecksum, chunkOffset, shardBytes } from '../codec/index.ts'
import type { Manifest } from '../protocol/index.ts'
import type { ChunkOpener } from './at-rest.ts'

/** Where a held fragment's bytes are read from: its file, or the row that keeps a small fragment inline. */
export interface FragmentBytes {
  /** Reads up to `length` bytes at `position` into the front of `buf`; how many were read. */
  read(buf: Buffer, length: number, position: number): Promise<number>
  size(): Promise<number>
  close(): Promise<void>
}

export function fileBytes(handle: FileHandle): FragmentBytes {
  return {
    read: async (buf, length, position) => (await handle.read(buf, 0, length, position)).bytesRead,
    size: async () => (await handle.stat()).size,
    close: () => handle.close(),
  }
}

export function memoryBytes(data: Buffer): FragmentBytes {
  return {
    read: async (buf, length, position) => data.copy(buf, 0, Math.min(position, data.length), Math.min(position + length, data.length)),
    size: async () => data.length,
    close: async () => undefined,
  }
}

/**
 * A fragment encrypted at rest, read as plaintext: whole chunks only (as
 * every reader reads), each opened against its tag; a chunk that fails it
 * reads short, which callers take for damage on this disk.
 */
export function openedBytes(bytes: FragmentBytes, manifest: Manifest, opener: ChunkOpener): FragmentBytes {
  const shard = shardBytes(manifest.coding.stripeBytes, manifest.coding.k)
  return {
    read: async (buf, length, position) => {
      const stripe = position / shard
      if (!Number.isInteger(stripe) || length !== chunkBytes(manifest.size, manifest.coding, stripe))
        throw new HousePartyError('ERR_INTERNAL', `an encrypted fragment is read a whole chunk at a time, not ${length} bytes at ${position}`)
      const read = await bytes.read(buf, length, position)
      return read === length && opener.openChunk(stripe, buf.subarray(0, read)) ? read : 0
    },
    size: () => bytes.size(),
    close: () => bytes.close(),
  }
}

/**
 * Buffers a holder reads chunks into while it serves a fragment, each given
 * back once the socket has taken it: a gigabyte served then costs no gigabyte
 * of fresh buffers (each paid for in page faults, and through V8's count of
 * memory outside its heap in full garbage collections).
 */
export class ChunkBuffers {
  /** Blocks are whole multiples of this: a fragment's last, shorter chunk reuses blocks too. */
  static readonly #GRAIN = 64 * 1024
  readonly #maxFreeBytes: number
  readonly #free = new Map<number, ArrayBuffer[]>()
  readonly #owned = new WeakSet<ArrayBuffer>()
  #freeBytes = 0

  /** `maxFreeBytes`: how much memory waiting for reuse is kept; beyond it, given-back buffers are left to the garbage collector. */
  constructor(maxFreeBytes = 16 * 1024 * 1024) {
    this.#maxFreeBytes = maxFreeBytes
  }

  take(length: number): Buffer {
    const size = Math.max(1, Math.ceil(length / ChunkBuffers.#GRAIN)) * ChunkBuffers.#GRAIN
    let block = this.#free.get(size)?.pop()
    if (block) this.#freeBytes -= size
    else {
      block = new ArrayBuffer(size)
      this.#owned.add(block)
    }
    return Buffer.from(block, 0, length)
  }

  /** Takes back a buffer from take() once nothing reads it any more (once only); others are ignored. */
  give(buf: Buffer): void {
    const block = buf.buffer
    if (!(block instanceof ArrayBuffer) || !this.#owned.has(block) || this.#freeBytes + block.byteLength > this.#maxFreeBytes) return
    const list = this.#free.get(block.byteLength) ?? []
    if (list.includes(block)) return
    list.push(block)
    this.#free.set(block.byteLength, list)
    this.#freeBytes += block.byteLength
  }
}

/**
 * The chunks of a fragment from `fromChunk` on, as a stream (closing `bytes` at its end); a chunk that reads short fails it.
 * Chunks are read into `buffers` when given (the consumer gives each back).
 */
export function chunkStream(bytes: FragmentBytes, manifest: Manifest, fromChunk: number, buffers?: ChunkBuffers): Readable {
  const read = async (s: number): Promise<Buffer> => {
    const len = chunkBytes(manifest.size, manifest.coding, s)
    const buf = buffers ? buffers.take(len) : Buffer.allocUnsafe(len)
    if ((await bytes.read(buf, buf.length, chunkOffset(manifest.coding, s))) !== buf.length)
      throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `chunk ${s} of fragment ${manifest.index} failed its check on this peer's disk`)
    return buf
  }
  async function* chunks(): AsyncGenerator<Buffer> {
    // One chunk read ahead: the disk works on the next while this one goes out.
    let next: Promise<Buffer> | undefined
    try {
      for (let s = fromChunk; s < manifest.chunks.length; s++) {
        const current = next ?? read(s)
        next = s + 1 < manifest.chunks.length ? read(s + 1) : undefined
        next?.catch(() => undefined)
        yield await current
      }
    } finally {
      await next?.catch(() => undefined)
      await bytes.close()
    }
  }
  return Readable.from(chunks(), { objectMode: false })
}

/** Scrub of one fragment's bytes: the length the row says, every chunk against its checksum; `pace` is awaited before each chunk. */
export async function verifyChunks(bytes: FragmentBytes, manifest: Manifest, length: number, pace?: (bytes: number) => Promise<void>): Promise<boolean> {
  if ((await bytes.size()) !== length) return false
  let buf = Buffer.alloc(0)
  for (let s = 0; s < manifest.chunks.length; s++) {
    const len = chunkBytes(manifest.size, manifest.coding, s)
    await pace?.(len)
    if (buf.length < len) buf = Buffer.allocUnsafe(len)
    if (!(await readChunkChecked(bytes, manifest, s, buf))) return false
  }
  return true
}

/** Reads chunk `stripe` of a fragment into the front of `buf`; false if it is short or fails its checksum. */
export async function readChunkChecked(bytes: FragmentBytes, manifest: Manifest, stripe: number, buf: Buffer): Promise<boolean> {
  const len = chunkBytes(manifest.size, manifest.coding, stripe)
  const read = await bytes.read(buf, len, chunkOffset(manifest.coding, stripe))
  return read === len && chunkChecksum(buf.subarray(0, len)).toString('hex') === manifest.chunks[stripe]
}

/** A held fragment open for reading, chunk by chunk; see FragmentStore.openChunks. */
export class ChunkReader {
  readonly manifest: Manifest
  readonly #bytes: FragmentBytes

  constructor(manifest: Manifest, bytes: FragmentBytes) {
    this.manifest = manifest
    this.#bytes = bytes
  }

  async read(stripe: number): Promise<Buffer> {
    const m = this.manifest
    const buf = Buffer.allocUnsafe(chunkBytes(m.size, m.coding, stripe))
    if (!(await readChunkChecked(this.#bytes, m, stripe, buf))) {
      throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `chunk ${stripe} of fragment ${m.index} failed its checksum on this peer's disk`)
    }
    return buf
  }

  close(): void {
    void this.#bytes.close().catch(() => undefined)
  }
}
