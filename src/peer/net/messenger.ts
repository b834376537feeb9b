import { randomBytes } from 'node:crypto'
import type { Clock } from '../../shared/clock.ts'
import type { Logger } from '../../shared/logger.ts'
import { type Message, type MessageType, parseMessage } from '../protocol/index.ts'
import { type DropReason, FrameKey, keyMismatchNonce, keyMismatchNotice, MAX_DATAGRAM_BYTES, open, seal } from './frame.ts'
import { ReplayWindow } from './replay.ts'
import { type PeerEncryption, sendsEncrypted, takesClear } from './secure.ts'
import type { DatagramTransport } from './transport.ts'

export interface MessengerEvents {
  sent(type: MessageType): void
  received(type: MessageType): void
  dropped(reason: DropReason): void
  /** A peer we sent to answered that our datagram failed its key: we run with another party key than it. */
  keyRejected?(from: string): void
}

/** Nonces of the last datagrams sent, to believe only key-mismatch notices about our own datagrams. */
const REMEMBERED_NONCES = 512
/** At most one key-mismatch notice per source this often, and one log line per source per minute. */
const NOTICE_EVERY_MS = 5_000
const LOG_EVERY_MS = 60_000
const MAX_SOURCES = 1_024

/**
 * Authenticated, validated messages over a datagram transport. Everything
 * that fails a check is dropped and reported through `events.dropped`;
 * nothing a remote sends can throw here. Matching replies to requests is the
 * membership core's business, not this layer's.
 */
export class Messenger {
  readonly #transport: DatagramTransport
  /** The keys the party key gives datagrams, made once. */
  readonly #key: FrameKey
  readonly #encryption: PeerEncryption
  readonly #clock: Clock
  readonly #replay: ReplayWindow
  readonly #events: MessengerEvents
  readonly #log: Logger
  #handler: (msg: Message, from: string) => void = () => {}
  readonly #sentNonces = new Set<string>()
  /** Per source that sent datagrams under another key: when we last answered with a notice, and last logged it. */
  readonly #wrongKey = new Map<string, { noticed: number; logged: number }>()

  constructor(opts: { transport: DatagramTransport; key: Buffer; clock: Clock; events: MessengerEvents; logger: Logger; encryption?: PeerEncryption }) {
    this.#transport = opts.transport
    this.#key = new FrameKey(opts.key)
    this.#encryption = opts.encryption ?? 'on'
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
    const nonce = randomBytes(8)
    const datagram = seal(this.#key, payload, this.#clock.now(), nonce, sendsEncrypted(this.#encryption))
    if (datagram.length > MAX_DATAGRAM_BYTES) {
      this.#log.error({ type: msg.type, bytes: datagram.length }, 'message too large to send')
      return
    }
    this.#events.sent(msg.type)
    this.#sentNonces.add(nonce.toString('hex'))
    if (this.#sentNonces.size > REMEMBERED_NONCES) this.#sentNonces.delete(this.#sentNonces.values().next().value as string)
    this.#transport.send(to, datagram)
  }

  #receive(data: Buffer, from: string): void {
    const echoed = keyMismatchNonce(data)
    if (echoed) {
      if (this.#sentNonces.has(echoed.toString('hex'))) this.#events.keyRejected?.(from)
      else this.#events.dropped('unexpected')
      return
    }
    const opened = open(this.#key, data, takesClear(this.#encryption))
    if (opened === 'mac') this.#answerWrongKey(data, from)
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

  /** Tells a source whose datagram failed our key so (rate-limited), and logs it now and then. */
  #answerWrongKey(data: Buffer, from: string): void {
    const now = this.#clock.now()
    if (this.#wrongKey.size >= MAX_SOURCES && !this.#wrongKey.has(from)) this.#wrongKey.clear()
    const seen = this.#wrongKey.get(from) ?? { noticed: -Infinity, logged: -Infinity }
    if (now - seen.noticed >= NOTICE_EVERY_MS) {
      seen.noticed = now
      this.#transport.send(from, keyMismatchNotice(data))
    }
    if (now - seen.logged >= LOG_EVERY_MS) {
      seen.logged = now
      this.#log.warn({ from }, 'datagrams from this source fail authentication: a peer running with another party key? (dropped)')
    }
    this.#wrongKey.set(from, seen)
  }
}
