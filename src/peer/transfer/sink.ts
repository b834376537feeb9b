import { HousePartyError } from '../../shared/errors.ts'
import { type DialOptions, dial, type PintChannel } from '../net/index.ts'
import { type Coding, type HoldTrailer, PintReplies, type Version } from '../protocol/index.ts'
import type { FragmentStore, FragmentWriter } from '../store/index.ts'

export interface SinkTarget {
  name: string
  version: Version
  index: number
  coding: Coding
}

/** What a holder confirms once a fragment is durable. */
export interface Held {
  digest: string
  bytes: number
}

/**
 * holdMyPint, sending side: one fragment streamed, chunk by chunk, to one
 * holder. A failure marks the sink failed instead of throwing, so the other
 * fragments of a put carry on.
 */
export interface FragmentSink {
  readonly holder: string
  readonly index: number
  readonly failure: HousePartyError | undefined
  readonly failed: boolean
  /** Sends one chunk; `flushed` runs exactly once, when `data` may be reused. */
  write(data: Buffer, digest: Buffer, flushed?: () => void): Promise<void>
  /** Ends the fragment and waits until the holder has it durable; undefined if the sink failed. */
  finish(trailer: HoldTrailer): Promise<Held | undefined>
  fail(err: unknown): void
  /** Called while the sender waits for its own source: keeps a holder that has seen nothing for a while from giving up. */
  keepAlive(): void
}

/**
 * How often a sender with nothing to send tells its holders it is alive: well
 * under the shortest transfer timeout a holder may have (--transfer-timeout-ms
 * is at least 1 s), and only 4 bytes.
 */
const KEEPALIVE_MS = 250

/** Keeps `sinks` alive while their sender waits for its source (a slow upload); call the result to stop. */
export function keepSinksAlive(sinks: readonly FragmentSink[]): () => void {
  const timer = setInterval(() => {
    for (const sink of sinks) sink.keepAlive()
  }, KEEPALIVE_MS)
  return () => clearInterval(timer)
}

/**
 * A fragment for another guest, over TCP. The holder answers "ready" before
 * any byte is sent, so a peer that cannot take the fragment is found before
 * the data starts flowing and another is tried.
 */
export class RemoteSink implements FragmentSink {
  readonly holder: string
  readonly index: number
  readonly #channel: PintChannel
  failure: HousePartyError | undefined
  #wroteSinceKeepAlive = false

  private constructor(holder: string, index: number, channel: PintChannel) {
    this.holder = holder
    this.index = index
    this.#channel = channel
  }

  static async open(holder: string, address: string, target: SinkTarget, options: DialOptions): Promise<RemoteSink> {
    const channel = await dial(address, { op: 'hold', ...target }, options)
    try {
      await channel.readReply(PintReplies.holdReady)
    } catch (err) {
      channel.destroy()
      throw err
    }
    return new RemoteSink(holder, target.index, channel)
  }

  get failed(): boolean {
    return this.failure !== undefined
  }

  async write(data: Buffer, digest: Buffer, flushed?: () => void): Promise<void> {
    if (this.failure || this.#channel.socket.destroyed) {
      flushed?.()
      return
    }
    this.#wroteSinceKeepAlive = true
    try {
      await this.#channel.writeChunk(data, digest, flushed)
    } catch (err) {
      this.fail(err)
    }
  }

  /** Ends the stream with the authenticated trailer and waits for the holder to confirm the fragment is durable. */
  async finish(trailer: HoldTrailer): Promise<Held | undefined> {
    if (this.failure) return undefined
    try {
      await this.#channel.endChunks()
      await this.#channel.sendFrame(`t${this.#channel.nonce}`, trailer)
      const reply = await this.#channel.readReply(PintReplies.hold)
      if (reply.digest !== trailer.digest) throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `holder ${this.holder} stored a different fragment digest`)
      return { digest: reply.digest, bytes: reply.bytes }
    } catch (err) {
      this.fail(err)
      return undefined
    } finally {
      this.#channel.destroy()
    }
  }

  keepAlive(): void {
    // Only when nothing went out since the last call: a stream that flows needs no keepalive.
    if (!this.#wroteSinceKeepAlive && !this.failure) this.#channel.keepAlive()
    this.#wroteSinceKeepAlive = false
  }

  fail(err: unknown): void {
    this.failure ??=
      err instanceof HousePartyError ? err : new HousePartyError('ERR_TRANSFER_FAILED', `fragment ${this.index} to ${this.holder}: ${(err as Error).message}`)
    this.#channel.destroy()
  }
}

/**
 * A fragment this peer keeps itself: written straight to its own store, so
 * the coordinator of a put does not send a third of the file to itself
 * over loopback.
 */
export class LocalSink implements FragmentSink {
  readonly holder: string
  readonly index: number
  readonly #writer: FragmentWriter
  failure: HousePartyError | undefined

  private constructor(holder: string, index: number, writer: FragmentWriter) {
    this.holder = holder
    this.index = index
    this.#writer = writer
  }

  static async open(holder: string, store: FragmentStore, target: SinkTarget): Promise<LocalSink> {
    const writer = await store.beginWrite({ name: target.name, version: target.version, index: target.index }, target.coding)
    return new LocalSink(holder, target.index, writer)
  }

  get failed(): boolean {
    return this.failure !== undefined
  }

  async write(data: Buffer, digest: Buffer, flushed?: () => void): Promise<void> {
    if (this.failure) {
      flushed?.()
      return
    }
    try {
      // Nothing is in transit: the digest was computed from (or checked against) these same bytes by the caller.
      await this.#writer.append(data, digest, { written: flushed, checked: true })
    } catch (err) {
      this.fail(err)
    }
  }

  async finish(trailer: HoldTrailer): Promise<Held | undefined> {
    if (this.failure) return undefined
    try {
      const held = await this.#writer.commit(trailer)
      return { digest: held.digest, bytes: held.bytes }
    } catch (err) {
      this.fail(err)
      return undefined
    }
  }

  /** Nothing to keep alive: the fragment is written here. */
  keepAlive(): void {}

  fail(err: unknown): void {
    if (this.failure) return
    this.failure =
      err instanceof HousePartyError
        ? err
        : new HousePartyError('ERR_TRANSFER_FAILED', `fragment ${this.index} to this peer's store: ${(err as Error).message}`)
    void this.#writer.abort()
  }
}

/**
 * A small fragment gathered whole (it is one chunk at most) and sent with one
 * `stash` at finish, to be kept inline by its holder: what a repair or a move
 * of a small file uses, so its fragments stay out of the file system as a
 * put's do.
 */
export class WholeSink implements FragmentSink {
  readonly holder: string
  readonly index: number
  readonly #send: (trailer: HoldTrailer, data: Buffer, checksum: Buffer | undefined) => Promise<Held>
  #data: Buffer | undefined
  #checksum: Buffer | undefined
  failure: HousePartyError | undefined

  constructor(holder: string, index: number, send: (trailer: HoldTrailer, data: Buffer, checksum: Buffer | undefined) => Promise<Held>) {
    this.holder = holder
    this.index = index
    this.#send = send
  }

  get failed(): boolean {
    return this.failure !== undefined
  }

  async write(data: Buffer, digest: Buffer, flushed?: () => void): Promise<void> {
    if (this.#data) this.fail(new HousePartyError('ERR_INTERNAL', `fragment ${this.index} has more than one chunk: it cannot be sent whole`))
    else {
      // A copy: the caller may reuse its buffer once flushed.
      this.#data = Buffer.from(data)
      this.#checksum = Buffer.from(digest)
    }
    flushed?.()
  }

  async finish(trailer: HoldTrailer): Promise<Held | undefined> {
    if (this.failure) return undefined
    try {
      return await this.#send(trailer, this.#data ?? Buffer.alloc(0), this.#checksum)
    } catch (err) {
      this.fail(err)
      return undefined
    }
  }

  keepAlive(): void {}

  fail(err: unknown): void {
    this.failure ??=
      err instanceof HousePartyError ? err : new HousePartyError('ERR_TRANSFER_FAILED', `fragment ${this.index} to ${this.holder}: ${(err as Error).message}`)
  }
}
