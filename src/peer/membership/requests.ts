import type { Message, Reply } from '../protocol/index.ts'

export interface RequestOptions {
  /** Give up (and call onTimeout) this long after the first send. */
  timeoutMs: number
  /** Send again this often until answered. */
  resendMs?: number
}

interface Pending {
  to: string
  msg: Message
  resendMs: number | undefined
  nextSendAt: number
  deadline: number
  onReply: (reply: Reply, from: string) => void
  onTimeout: (() => void) | undefined
}

/**
 * Requests in flight, for a core that owns no timers: each is resent on the
 * ticks after its resend interval and expires on the first tick after its
 * deadline. A reply is matched by its `re`; a late or duplicate one finds
 * nothing and is reported as unexpected by the caller.
 */
export class Requests {
  readonly #send: (to: string, msg: Message) => void
  readonly #pending = new Map<number, Pending>()
  #nextRid: number

  constructor(send: (to: string, msg: Message) => void, firstRid: number) {
    this.#send = send
    this.#nextRid = firstRid % 2 ** 32
  }

  get size(): number {
    return this.#pending.size
  }

  /** A fresh request id, also for messages whose replies nobody waits for (pings). */
  rid(): number {
    this.#nextRid = (this.#nextRid + 1) % 2 ** 32
    return this.#nextRid
  }

  /** Sends `make(rid)` now and on every resend; returns the rid. */
  send(
    to: string,
    make: (rid: number) => Message,
    options: RequestOptions,
    now: number,
    onReply: (reply: Reply, from: string) => void,
    onTimeout?: () => void,
  ): number {
    const rid = this.rid()
    const msg = make(rid)
    const resendMs = options.resendMs
    this.#pending.set(rid, {
      to,
      msg,
      resendMs,
      nextSendAt: resendMs === undefined ? Number.POSITIVE_INFINITY : now + resendMs,
      deadline: now + options.timeoutMs,
      onReply,
      onTimeout,
    })
    this.#send(to, msg)
    return rid
  }

  /** Hands a reply to its request; false when nobody waits for it. */
  reply(msg: Reply, from: string): boolean {
    const pending = this.#pending.get(msg.re)
    if (!pending) return false
    this.#pending.delete(msg.re)
    pending.onReply(msg, from)
    return true
  }

  cancel(rid: number): void {
    this.#pending.delete(rid)
  }

  cancelAll(): void {
    this.#pending.clear()
  }

  tick(now: number): void {
    const expired: Pending[] = []
    for (const [rid, p] of this.#pending) {
      if (now >= p.deadline) {
        this.#pending.delete(rid)
        expired.push(p)
      } else if (now >= p.nextSendAt) {
        p.nextSendAt = now + (p.resendMs ?? 0)
        this.#send(p.to, p.msg)
      }
    }
    for (const p of expired) p.onTimeout?.()
  }
}
