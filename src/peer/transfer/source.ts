import { HousePartyError } from '../../shared/errors.ts'
import { chunkBytes, chunkChecksum, chunkOffset, fragmentBytes, fragmentDigest } from '../codec/index.ts'
import { call, type DialOptions, dial, type PintChannel } from '../net/index.ts'
import { type Manifest, PintReplies, type Version } from '../protocol/index.ts'
import { ChunkBuffers, type ChunkReader, type FragmentStore } from '../store/index.ts'

export interface SourceTarget {
  name: string
  version: Version
  index: number
  /** The digest the tracker recorded for this fragment: the manifest must match it. */
  digest: string
}

/**
 * wheresMyPint, reading side: one fragment, chunk by chunk, from a given
 * stripe on. Every chunk is checked against the manifest, and the manifest
 * against the tracker's digest, so a corrupt or substituted fragment is
 * caught at the first bad chunk.
 */
export interface FragmentSource {
  readonly holder: string
  readonly index: number
  readonly manifest: Manifest
  /** The chunk of stripe `stripe`; stripes must be read in order. */
  chunk(stripe: number): Promise<Buffer>
  close(): void
}

/**
 * What streamed fetches read chunks into. A reader that is done with a chunk
 * (a get, once its answer has sent it) gives it back with
 * recycleFetchedChunk; one that keeps it leaves it to the garbage collector.
 */
const FETCHED_CHUNKS = new ChunkBuffers(32 * 1024 * 1024)

/** Gives back a chunk a fetch returned (or a piece cut from one) once nothing reads it any more; any other buffer is ignored. */
export function recycleFetchedChunk(piece: Buffer): void {
  FETCHED_CHUNKS.give(piece)
}

/** A fragment on another guest, streamed over TCP. */
export class RemoteSource implements FragmentSource {
  readonly holder: string
  readonly index: number
  readonly manifest: Manifest
  readonly #channel: PintChannel
  #next: number

  private constructor(holder: string, index: number, manifest: Manifest, channel: PintChannel, fromChunk: number) {
    this.holder = holder
    this.index = index
    this.manifest = manifest
    this.#channel = channel
    this.#next = fromChunk
  }

  static async open(holder: string, address: string, target: SourceTarget, fromChunk: number, options: DialOptions): Promise<RemoteSource> {
    const channel = await dial(address, { op: 'fetch', name: target.name, version: target.version, index: target.index, fromChunk }, options)
    try {
      const { manifest } = await channel.readReply(PintReplies.fetch)
      checkManifest(holder, target, manifest)
      return new RemoteSource(holder, target.index, manifest, channel, fromChunk)
    } catch (err) {
      channel.destroy()
      throw err
    }
  }

  /** A small fragment read whole in one call (on a kept connection, given back once every byte is read). */
  static async fetchWhole(holder: string, address: string, target: SourceTarget, options: DialOptions): Promise<FragmentSource> {
    return call(address, fetchWholeCall(target), PintReplies.fetch, options, {
      afterReply: async ({ manifest, bytes }, channel) => {
        checkWhole(holder, target, manifest, bytes)
        return new WholeSource(holder, target.index, manifest, await channel.reader.read(bytes))
      },
    })
  }

  async chunk(stripe: number): Promise<Buffer> {
    if (stripe !== this.#next) throw new HousePartyError('ERR_INTERNAL', `read stripe ${stripe}, expected ${this.#next}`)
    const m = this.manifest
    const data = FETCHED_CHUNKS.take(chunkBytes(m.size, m.coding, stripe))
    await this.#channel.reader.readInto(data)
    if (chunkChecksum(data).toString('hex') !== m.chunks[stripe]) {
      throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `chunk ${stripe} of fragment ${this.index} on ${this.holder} failed its checksum`)
    }
    this.#next++
    return data
  }

  close(): void {
    this.#channel.destroy()
  }
}

/**
 * A small fragment that came whole some other way (a batched fetch, a tracker's answer: see TrackerClient.locate),
 * checked as fetchWhole checks it.
 */
export function wholeSource(holder: string, target: SourceTarget, manifest: Manifest, data: Buffer): FragmentSource {
  checkWhole(holder, target, manifest, data.length)
  return new WholeSource(holder, target.index, manifest, data)
}

/** A fragment read whole into memory; each chunk is checked as it is taken. */
class WholeSource implements FragmentSource {
  readonly holder: string
  readonly index: number
  readonly manifest: Manifest
  readonly #data: Buffer

  constructor(holder: string, index: number, manifest: Manifest, data: Buffer) {
    this.holder = holder
    this.index = index
    this.manifest = manifest
    this.#data = data
  }

  async chunk(stripe: number): Promise<Buffer> {
    const m = this.manifest
    const at = chunkOffset(m.coding, stripe)
    const data = this.#data.subarray(at, at + chunkBytes(m.size, m.coding, stripe))
    if (data.length !== chunkBytes(m.size, m.coding, stripe) || chunkChecksum(data).toString('hex') !== m.chunks[stripe]) {
      throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `chunk ${stripe} of fragment ${this.index} on ${this.holder} failed its checksum`)
    }
    return data
  }

  close(): void {}
}

/** A fragment this peer holds: read from its own disk, not through a loopback connection to itself. */
export class LocalSource implements FragmentSource {
  readonly holder: string
  readonly index: number
  readonly #reader: ChunkReader

  private constructor(holder: string, index: number, reader: ChunkReader) {
    this.holder = holder
    this.index = index
    this.#reader = reader
  }

  static async open(holder: string, store: FragmentStore, target: SourceTarget): Promise<LocalSource> {
    const reader = await store.openChunks(target)
    try {
      checkManifest(holder, target, reader.manifest)
    } catch (err) {
      reader.close()
      throw err
    }
    return new LocalSource(holder, target.index, reader)
  }

  get manifest(): Manifest {
    return this.#reader.manifest
  }

  chunk(stripe: number): Promise<Buffer> {
    return this.#reader.read(stripe)
  }

  close(): void {
    this.#reader.close()
  }
}

/** The call that fetches a fragment whole. */
export function fetchWholeCall(target: SourceTarget): { op: 'fetch'; name: string; version: Version; index: number; fromChunk: 0 } {
  return { op: 'fetch', name: target.name, version: target.version, index: target.index, fromChunk: 0 }
}

function checkWhole(holder: string, target: SourceTarget, manifest: Manifest, bytes: number): void {
  checkManifest(holder, target, manifest)
  if (bytes > fragmentBytes(manifest.size, manifest.coding)) throw new HousePartyError('ERR_PROTOCOL', `holder ${holder} announced ${bytes} bytes`)
}

function checkManifest(holder: string, target: SourceTarget, manifest: Manifest): void {
  if (manifest.name !== target.name || manifest.version !== target.version || manifest.index !== target.index) {
    throw new HousePartyError('ERR_PROTOCOL', `holder ${holder} sent the manifest of another fragment`)
  }
  if (fragmentDigest(manifest.chunks) !== target.digest) {
    throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `fragment ${target.index} on ${holder} does not match the tracker's digest`)
  }
}
