import type { Socket } from 'node:net'
import { HousePartyError } from '../../shared/errors.ts'

/**
 * Exact-length reads from a socket. The socket is paused once `highWater`
 * bytes wait unread, so a slow consumer (a disk, a caller) slows the sender
 * through TCP flow control instead of growing memory.
 */
export class ByteReader {
  readonly #socket: Socket
  readonly #highWater: number
  readonly #queue: Buffer[] = []
  #buffered = 0
  #consumed = 0
  #ended = false
  #error: Error | undefined
  #wake: (() => void) | undefined

  constructor(socket: Socket, highWater = 4 * 1024 * 1024) {
    this.#socket = socket
    this.#highWater = highWater
    socket.on('data', (chunk: Buffer) => {
      this.#queue.push(chunk)
      this.#buffered += chunk.length
      if (this.#buffered >= this.#highWater) socket.pause()
      this.#notify()
    })
    socket.on('end', () => {
      this.#ended = true
      this.#notify()
    })
    socket.on('error', (err) => {
      this.#error ??= err
      this.#notify()
    })
    socket.on('close', () => {
      this.#ended = true
      this.#notify()
    })
  }

  /** Bytes handed out so far. */
  get consumed(): number {
    return this.#consumed
  }

  /** Resolves with exactly n bytes, or rejects if the stream ends or fails first. */
  async read(n: number): Promise<Buffer> {
    while (this.#buffered < n) {
      if (this.#error) throw asTransferError(this.#error, this.#consumed + this.#buffered)
      if (this.#ended) {
        throw new HousePartyError('ERR_TRANSFER_FAILED', `connection closed after ${this.#consumed + this.#buffered} bytes, ${n - this.#buffered} short`)
      }
      if (this.#socket.isPaused()) this.#socket.resume()
      await new Promise<void>((resolve) => {
        this.#wake = resolve
      })
    }
    return this.#take(n)
  }

  /** True once the peer has closed and everything was read. */
  async atEnd(): Promise<boolean> {
    while (this.#buffered === 0 && !this.#ended && !this.#error) {
      if (this.#socket.isPaused()) this.#socket.resume()
      await new Promise<void>((resolve) => {
        this.#wake = resolve
      })
    }
    return this.#buffered === 0
  }

  #take(n: number): Buffer {
    this.#consumed += n
    this.#buffered -= n
    if (this.#buffered < this.#highWater && this.#socket.isPaused() && !this.#ended) this.#socket.resume()
    const first = this.#queue[0]
    if (first && first.length >= n) {
      if (first.length === n) this.#queue.shift()
      else this.#queue[0] = first.subarray(n)
      return first.subarray(0, n)
    }
    const out = Buffer.allocUnsafe(n)
    let at = 0
    while (at < n) {
      const head = this.#queue[0] as Buffer
      const take = Math.min(head.length, n - at)
      head.copy(out, at, 0, take)
      at += take
      if (take === head.length) this.#queue.shift()
      else this.#queue[0] = head.subarray(take)
    }
    return out
  }

  #notify(): void {
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }
}

function asTransferError(err: Error, at: number): HousePartyError {
  if (err instanceof HousePartyError) return err
  return new HousePartyError('ERR_TRANSFER_FAILED', `connection failed after ${at} bytes: ${err.message}`, { cause: err })
}
