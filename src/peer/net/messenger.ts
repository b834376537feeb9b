import type { Clock } from '../../shared/clock.ts'
import type { Logger } from '../../shared/logger.ts'
import { type Message, type MessageType, parseMessage } from '../protocol/index.ts'
import { type DropReason, MAX_DATAGRAM_BYTES, open, seal } from './frame.ts'
import { ReplayWindow } from './replay.ts'
import type { DatagramTransport } from './transport.ts'

export interface MessengerEvents {
  sent(type: MessageType): void
  received(type: MessageType): void
  dropped(reason: DropReason): void
}

/**
 * Authenticated, validated messages over a datagram transport. Everything
 * that fails a check is dropped and reported through `events.dropped`;
 * nothing a remote sends can throw here. Matching replies to requests is the
 * membership core's business, not this layer's.
 */
export class Messenger {
  readonly #transport: DatagramTransport
  readonly #key: Buffer
  readonly #clock: Clock
  readonly #replay: ReplayWindow
  readonly #events: MessengerEvents
  readonly #log: Logger
  #handler: (msg: Message, from: string) => void = () => {}

  constructor(opts: { transport: DatagramTransport; key: Buffer; clock: Clock; events: MessengerEvents; logger: Logger }) {
    this.#transport = opts.transport
    this.#key = opts.key
    this.#clock = opts.clock
    this.#replay = new ReplayWindow(opts.clock)
    this.#events = opts.events
    this.#log = opts.logger
    this.#transport.onDatagram((data, from) => this.#receive(data, from))
  }

  /** Where every valid message goes. */
  onMessage(handler: (msg: Message, from: string) => void): void {
    this.#handler = handler
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
    try {
      this.#handler(msg, from)
    } catch (err) {
      // A handler bug must not take the peer down with it.
      this.#log.error({ err, type: msg.type, from }, 'message handler failed')
    }
  }
}
