import { HousePartyError } from '../../shared/errors.ts'
import { type DialOptions, dial, type PintChannel } from '../net/index.ts'
import { type Coding, type HoldTrailer, PintReplies, type PintReply, type Version } from '../protocol/index.ts'

export interface SinkTarget {
  name: string
  version: Version
  index: number
  coding: Coding
}

/**
 * holdMyPint, sending side: one fragment streamed to one holder. The holder
 * answers "ready" before any byte is sent, so a peer that cannot take the
 * fragment is found before the data starts flowing and another is tried.
 */
export class FragmentSink {
  readonly holder: string
  readonly index: number
  readonly #channel: PintChannel
  #bytes = 0
  failure: HousePartyError | undefined

  private constructor(holder: string, index: number, channel: PintChannel) {
    this.holder = holder
    this.index = index
    this.#channel = channel
  }

  static async open(holder: string, address: string, target: SinkTarget, options: DialOptions): Promise<FragmentSink> {
    const channel = await dial(address, { op: 'hold', ...target }, options)
    try {
      await channel.readReply(PintReplies.holdReady)
    } catch (err) {
      channel.destroy()
      throw err
    }
    return new FragmentSink(holder, target.index, channel)
  }

  get bytes(): number {
    return this.#bytes
  }

  get failed(): boolean {
    return this.failure !== undefined
  }

  /**
   * Sends one chunk; a failure marks the sink failed instead of throwing, so
   * the other fragments carry on. `flushed` runs exactly once, when `data`
   * may be reused.
   */
  async write(data: Buffer, digest: Buffer, flushed?: () => void): Promise<void> {
    if (this.failure || this.#channel.socket.destroyed) {
      flushed?.()
      return
    }
    try {
      await this.#channel.writeChunk(data, digest, flushed)
      this.#bytes += data.length
    } catch (err) {
      this.fail(err)
    }
  }

  /** Ends the stream with the authenticated trailer and waits for the holder to confirm the fragment is durable. */
  async finish(trailer: HoldTrailer): Promise<PintReply<'hold'> | undefined> {
    if (this.failure) return undefined
    try {
      await this.#channel.endChunks()
      await this.#channel.sendFrame(`t${this.#channel.nonce}`, trailer)
      const reply = await this.#channel.readReply(PintReplies.hold)
      if (reply.digest !== trailer.digest) throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `holder ${this.holder} stored a different fragment digest`)
      return reply
    } catch (err) {
      this.fail(err)
      return undefined
    } finally {
      this.#channel.destroy()
    }
  }

  fail(err: unknown): void {
    this.failure ??=
      err instanceof HousePartyError ? err : new HousePartyError('ERR_TRANSFER_FAILED', `fragment ${this.index} to ${this.holder}: ${(err as Error).message}`)
    this.#channel.destroy()
  }
}
