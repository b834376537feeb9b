import { randomInt } from 'node:crypto'
import type { Clock } from '../../shared/clock.ts'
import { HousePartyError } from '../../shared/errors.ts'
import type { Logger } from '../../shared/logger.ts'
import { type Message, type MessageOf, type MessageType, parseMessage, type Reply } from '../protocol/index.ts'
import { type DropReason, MAX_DATAGRAM_BYTES, open, seal } from './frame.ts'
import { ReplayWindow } from './replay.ts'
import type { DatagramTransport } from './transport.ts'

export interface MessengerEvents {
  sent(type: MessageType): void
  received(type: MessageType): void
  dropped(reason: DropReason): void
}

export interface RequestOptions {
  /** Total time to wait for the reply. */
  timeoutMs: number
  /** Resend this often until a reply comes (UDP loses datagrams). */
  resendMs?: number
  signal?: AbortSignal
}

type Handler<T extends MessageType> = (msg: MessageOf<T>, from: string) => void
type PendingReply = { resolve: (m: Reply) => void; to: string }

/**
 * Authenticated, validated messages over a datagram transport, with
 * request/reply correlation. Everything that fails a check is dropped and
 * reported through `events.dropped`; nothing a remote sends can throw here.
 */
export class Messenger {
  readonly #transport: DatagramTransport
  readonly #key: Buffer
  readonly #clock: Clock
  readonly #replay: ReplayWindow
  readonly #events: MessengerEvents
  readonly #log: Logger
  readonly #handlers = new Map<MessageType, Handler<MessageType>>()
  readonly #pending = new Map<number, PendingReply>()
  #nextRid = randomInt(2 ** 31)

  constructor(opts: { transport: DatagramTransport; key: Buffer; clock: Clock; events: MessengerEvents; logger: Logger }) {
    this.#transport = opts.transport
    this.#key = opts.key
    this.#clock = opts.clock
    this.#replay = new ReplayWindow(opts.clock)
    this.#events = opts.events
    this.#log = opts.logger
    this.#transport.onDatagram((data, from) => this.#receive(data, from))
  }

  on<T extends MessageType>(type: T, handler: Handler<T>): void {
    this.#handlers.set(type, handler as unknown as Handler<MessageType>)
  }

  newRid(): number {
    this.#nextRid = (this.#nextRid + 1) % 2 ** 32
    return this.#nextRid
  }

  send(to: string, msg: Message): void {
    const payload = Buffer.from(JSON.stringify(msg), 'utf8')
    const datagram = seal(this.#key, payload, this.#clock.now())
    if (datagram.length > MAX_DATAGRAM_BYTES) {
      this.#log.error({ type: msg.type, bytes: datagram.length }, 'message too large to send')
      return
    }
    this.#events.sent(msg.type)
    this.#transport.send(to, datagram)
  }

  /**
   * Sends a request and waits for its reply, resending on a schedule. The
   * request is built by `make(rid)` so each carries its own correlation id.
   */
  async request<R extends Reply>(to: string, make: (rid: number) => Message, options: RequestOptions): Promise<R> {
    const rid = this.newRid()
    const msg = make(rid)
    const { promise, resolve, reject } = Promise.withResolvers<R>()
    this.#pending.set(rid, { resolve: resolve as (m: Reply) => void, to })
    const resend = options.resendMs === undefined ? undefined : setInterval(() => this.send(to, msg), options.resendMs)
    const timeout = setTimeout(
      () => reject(new HousePartyError('ERR_TIMEOUT', `no ${msg.type} reply from ${to} within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    )
    const onAbort = (): void => reject(new HousePartyError('ERR_ABORTED', `${msg.type} to ${to} aborted`))
    options.signal?.addEventListener('abort', onAbort, { once: true })
    this.send(to, msg)
    try {
      return await promise
    } finally {
      clearInterval(resend)
      clearTimeout(timeout)
      options.signal?.removeEventListener('abort', onAbort)
      this.#pending.delete(rid)
    }
  }

  #receive(data: Buffer, from: string): void {
    const opened = open(this.#key, data)
    if (typeof opened === 'string') return this.#events.dropped(opened)
    const verdict = this.#replay.check(opened.timestamp, opened.nonce)
    if (verdict !== 'ok') return this.#events.dropped(verdict)
    let value: unknown
    try {
      value = JSON.parse(opened.payload.toString('utf8'))
    } catch {
      return this.#events.dropped('json')
    }
    const msg = parseMessage(value)
    if (!msg) return this.#events.dropped('schema')
    this.#events.received(msg.type)
    if ('re' in msg) {
      const pending = this.#pending.get(msg.re)
      // A late or duplicate reply is normal on UDP: drop it quietly, but count it.
      if (!pending) return this.#events.dropped('unexpected')
      pending.resolve(msg)
      return
    }
    const handler = this.#handlers.get(msg.type)
    if (!handler) return this.#events.dropped('unexpected')
    try {
      handler(msg, from)
    } catch (err) {
      // A handler bug must not take the peer down with it.
      this.#log.error({ err, type: msg.type, from }, 'message handler failed')
    }
  }
}
