import type { Socket } from 'node:net'
import { HousePartyError } from '../../shared/errors.ts'

/**
 * Every data-plane socket reads into this one buffer. Node's per-read
 * allocation (a fresh 64 KiB buffer each time) costs a bulk receiver about
 * as much CPU as the bytes themselves, most of it in garbage collection;
 * reading up to 1 MiB at a time into memory that is reused also cuts the
 * number of reads. One buffer serves every socket because libuv fills it and
 * the callback copies out of it synchronously, before any other read runs.
 */
const READ_BUFFER = Buffer.allocUnsafe(1024 * 1024)
/** Bytes that arrive before anyone asks for them wait in blocks of this size, reused. */
const SPILL_BLOCK = 1024 * 1024
/**
 * The block a connection's first spilled bytes get when they fit in it: a
 * request or reply is mostly a few KiB, and a connection kept for the next
 * call keeps its block. A peer holds a hundred or so such connections; at
 * SPILL_BLOCK each they held some 60 MiB after a burst of small puts.
 */
const FIRST_BLOCK = 64 * 1024

interface Segment {
  block: Buffer
  start: number
  end: number
}

interface PendingRead {
  target: Buffer
  filled: number
}

/**
 * Exact-length reads from a socket. Received bytes go straight into the
 * buffer of a waiting readInto(), or else wait in reused spill blocks. The
 * socket is paused once `highWater` bytes wait unread, so a slow consumer (a
 * disk, a caller) slows the sender through TCP flow control instead of
 * growing memory.
 *
 * Client sockets get the reader's `onread` at connect(); server sockets
 * call `attach()`, which needs the socket paused on connect.
 */
export class ByteReader {
  readonly #highWater: number
  readonly #spill: Segment[] = []
  readonly #freeBlocks: Buffer[] = []
  #socket: Socket | undefined
  /** Set when the reader asked the socket to stop reading (spill full). */
  #paused = false
  #buffered = 0
  #consumed = 0
  #ended = false
  #error: Error | undefined
  #pending: PendingRead | undefined
  #wake: (() => void) | undefined

  constructor(highWater = 4 * 1024 * 1024) {
    this.#highWater = highWater
  }

  /** The `onread` option for net.connect(): the socket reads into the shared buffer and hands each read here. */
  readonly onread = {
    buffer: READ_BUFFER,
    callback: (n: number, buf: Uint8Array): boolean => this.#receive(buf.subarray(0, n) as Buffer),
  }

  /** Takes received bytes; returns false (and the socket stops reading) once the spill is full. */
  #receive(data: Buffer): boolean {
    let at = 0
    const pending = this.#pending
    if (pending && this.#buffered === 0) {
      at = Math.min(data.length, pending.target.length - pending.filled)
      data.copy(pending.target, pending.filled, 0, at)
      pending.filled += at
      this.#consumed += at
    }
    if (at < data.length) this.#stash(data.subarray(at))
    this.#notify()
    this.#paused = this.#buffered >= this.#highWater
    return !this.#paused
  }

  /** Follows a socket created with `onread` (client side). */
  bind(socket: Socket): this {
    this.#socket = socket
    socket.on('end', () => this.#finish())
    socket.on('close', () => this.#finish())
    socket.on('error', (err) => {
      this.#error ??= err
      this.#notify()
    })
    return this
  }

  /**
   * Server side: Node's server cannot give accepted sockets an `onread`, so
   * the same buffer is installed the way the net module does it for client
   * sockets. Where that is not available (another runtime, a TLS socket,
   * bytes already read and put back), the reader falls back to 'data'
   * events. The socket must still be paused.
   */
  attach(socket: Socket): this {
    this.bind(socket)
    // Bytes already taken off the socket (a first byte looked at, then put back) come only through 'data'.
    if (socket.readableLength > 0 || !installReadBuffer(socket, this.onread.buffer, this.onread.callback)) {
      socket.on('data', (chunk: Buffer) => {
        if (!this.#receive(chunk)) socket.pause()
      })
    }
    socket.resume()
    return this
  }

  /** Nothing buffered, no read waiting, the stream still open: the connection may carry another exchange. */
  get idle(): boolean {
    return this.#buffered === 0 && !this.#pending && !this.#ended && !this.#error
  }

  /**
   * Lets go of the blocks a bulk transfer left, once nothing waits unread:
   * called when the connection goes idle (back into a pool, or between the
   * requests a server reads on it), so idle connections hold at most a
   * FIRST_BLOCK each.
   */
  shed(): void {
    this.#freeBlocks.splice(0)
    if (this.#buffered === 0 && (this.#spill[0]?.block.length ?? 0) > FIRST_BLOCK) this.#spill.splice(0)
  }

  /** Bytes handed out so far. */
  get consumed(): number {
    return this.#consumed
  }

  /** Resolves with exactly n bytes (a buffer of its own), or rejects if the stream ends or fails first. */
  async read(n: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(n)
    await this.readInto(out)
    return out
  }

  /** Fills `target` exactly; bytes already received are copied first, the rest land in it as they arrive. */
  async readInto(target: Buffer): Promise<void> {
    if (this.#pending) throw new HousePartyError('ERR_INTERNAL', 'concurrent reads on one connection')
    let filled = this.#takeInto(target, 0)
    while (filled < target.length) {
      if (this.#error) throw asTransferError(this.#error, this.#consumed)
      if (this.#ended) {
        throw new HousePartyError('ERR_TRANSFER_FAILED', `connection closed after ${this.#consumed} bytes, ${target.length - filled} short`)
      }
      this.#resumeIfRoom()
      const pending: PendingRead = { target, filled }
      this.#pending = pending
      await new Promise<void>((resolve) => {
        this.#wake = resolve
      })
      this.#pending = undefined
      filled = pending.filled
    }
  }

  /** True once the peer has closed and everything was read. */
  async atEnd(): Promise<boolean> {
    while (this.#buffered === 0 && !this.#ended && !this.#error) {
      this.#resumeIfRoom()
      await new Promise<void>((resolve) => {
        this.#wake = resolve
      })
    }
    return this.#buffered === 0
  }

  #stash(data: Buffer): void {
    let at = 0
    while (at < data.length) {
      let last = this.#spill.at(-1)
      if (!last || last.end === last.block.length) {
        const fits = this.#spill.length === 0 && data.length - at <= FIRST_BLOCK
        last = { block: this.#freeBlocks.pop() ?? Buffer.allocUnsafe(fits ? FIRST_BLOCK : SPILL_BLOCK), start: 0, end: 0 }
        this.#spill.push(last)
      }
      const n = data.copy(last.block, last.end, at)
      last.end += n
      at += n
    }
    this.#buffered += data.length
  }

  #takeInto(target: Buffer, from: number): number {
    let filled = from
    while (filled < target.length && this.#buffered > 0) {
      const head = this.#spill[0] as Segment
      const n = head.block.copy(target, filled, head.start, Math.min(head.end, head.start + target.length - filled))
      head.start += n
      filled += n
      this.#buffered -= n
      this.#consumed += n
      if (head.start < head.end) continue
      if (this.#spill.length > 1 || head.end === head.block.length) {
        this.#spill.shift()
        if (this.#freeBlocks.length < 2) this.#freeBlocks.push(head.block)
      } else {
        head.start = head.end = 0
      }
    }
    return filled
  }

  #resumeIfRoom(): void {
    if (!this.#paused || this.#buffered >= this.#highWater || this.#ended) return
    this.#paused = false
    this.#socket?.resume()
  }

  #finish(): void {
    this.#ended = true
    this.#notify()
  }

  #notify(): void {
    const pending = this.#pending
    if (pending && this.#buffered > 0) pending.filled = this.#takeInto(pending.target, pending.filled)
    if (pending && pending.filled < pending.target.length && !this.#ended && !this.#error) return
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }
}

type ReadBufferCallback = (n: number, buf: Uint8Array) => boolean

/**
 * Gives an accepted socket a user read buffer, as `new net.Socket({ onread })`
 * does: the net module keeps the buffer and its callback under symbols and
 * the TCP handle fills that buffer instead of allocating. Returns false when
 * this runtime does not expose them, and then changes nothing.
 */
function installReadBuffer(socket: Socket, buffer: Buffer, callback: ReadBufferCallback): boolean {
  const symbols = Object.getOwnPropertySymbols(socket)
  const symbol = (description: string): symbol | undefined => symbols.find((s) => s.description === description)
  const kBuffer = symbol('kBuffer')
  const kBufferCb = symbol('kBufferCb')
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (buf: Uint8Array) => void } })._handle
  if (!kBuffer || !kBufferCb || typeof handle?.useUserBuffer !== 'function' || !socket.isPaused()) return false
  const slots = socket as unknown as Record<symbol, unknown>
  if (slots[kBuffer] !== null || slots[kBufferCb] !== null) return false
  slots[kBuffer] = buffer
  slots[kBufferCb] = callback
  handle.useUserBuffer(buffer)
  return true
}

function asTransferError(err: Error, at: number): HousePartyError {
  if (err instanceof HousePartyError) return err
  return new HousePartyError('ERR_TRANSFER_FAILED', `connection failed after ${at} bytes: ${err.message}`, { cause: err })
}
