import { backoffMs } from '../../shared/lifecycle.ts'
import type { Reply } from '../protocol/index.ts'
import { JOIN_ACK_TIMEOUT_MS, KNOCK_TIMEOUT_MS, RESEND_MS } from './constants.ts'
import type { Shared } from './state.ts'

export interface JoinerHooks {
  /** Nobody answered and this peer may found a party. */
  found(): void
  /** The coordinator says this peer is a guest already: fetch the list from it. */
  fetchView(address: string): void
  /** A newer start of this identity holds its place: this process must stop. */
  superseded(message: string): void
}

type Phase = 'off' | 'resolving' | 'knocking' | 'asking' | 'waiting' | 'backoff'

/**
 * The newcomer's side of joining: resolve the doors, knock on them in random
 * order until a guest answers, ask it to join (it relays to the coordinator),
 * then wait for the commit that admits this peer. Anything that fails knocks
 * again with jittered backoff; only a peer that may found a party (no doors
 * given, or --found-if-alone and nobody answered twice) ever founds one, and a
 * peer rejoining after removal never does.
 */
export class Joiner {
  readonly #s: Shared
  readonly #doorsGiven: readonly string[]
  readonly #foundIfAlone: boolean
  readonly #hooks: JoinerHooks
  #phase: Phase = 'off'
  #rejoin = false
  #lastKnown: string[] = []
  #doors: string[] = []
  #tried = 0
  #attempt = 0
  #until = 0

  constructor(shared: Shared, options: { join: readonly string[]; foundIfAlone: boolean }, hooks: JoinerHooks) {
    this.#s = shared
    this.#doorsGiven = options.join
    this.#foundIfAlone = options.foundIfAlone
    this.#hooks = hooks
  }

  /** The doors to knock on: those given, and the guests of the last list this peer knew. */
  doors(extra: readonly string[] = []): string[] {
    return [...new Set([...this.#doorsGiven, ...this.#lastKnown, ...extra])].filter((d) => d !== this.#s.self.address)
  }

  /** Starts knocking; `lastKnown` are the addresses of the guest list this peer was last on. */
  start(rejoin: boolean, lastKnown: readonly string[] = []): void {
    this.#rejoin = rejoin
    this.#lastKnown = [...lastKnown]
    this.#attempt = 0
    if (!rejoin && this.#doorsGiven.length === 0) {
      this.#phase = 'off'
      this.#hooks.found()
      return
    }
    this.#resolve()
  }

  stop(): void {
    this.#phase = 'off'
  }

  /** The doors, with names expanded (a headless Service resolves to many peers). */
  doorsResolved(doors: readonly string[]): void {
    if (this.#phase !== 'resolving') return
    const own = this.#s.self.address
    const unique = [...new Set(doors)].filter((d) => d !== own)
    // Shuffled, so a crowd of newcomers does not all lean on the first door.
    for (let i = unique.length - 1; i > 0; i--) {
      const j = Math.floor(this.#s.env.random() * (i + 1))
      ;[unique[i], unique[j]] = [unique[j] as string, unique[i] as string]
    }
    this.#doors = unique
    this.#tried = 0
    this.#phase = 'knocking'
    this.#knockNext()
  }

  tick(): void {
    if ((this.#phase === 'waiting' || this.#phase === 'backoff') && this.#s.now >= this.#until) {
      if (this.#phase === 'waiting') this.#s.env.log.info({ waitedMs: this.#s.timings.joinTimeoutMs }, 'not admitted in time; knocking again')
      this.#attempt++
      this.#resolve()
    }
  }

  #resolve(): void {
    this.#phase = 'resolving'
    this.#s.env.resolveDoors(this.doors())
  }

  #knockNext(): void {
    const s = this.#s
    if (this.#phase !== 'knocking') return
    const door = this.#doors[this.#tried++]
    if (door === undefined) return this.#nobodyAnswered()
    s.requests.send(
      door,
      (rid) => ({ type: 'knock', rid, address: s.self.address }),
      { timeoutMs: KNOCK_TIMEOUT_MS, resendMs: RESEND_MS },
      s.now,
      (reply) => {
        if (this.#phase !== 'knocking') return
        if (reply.type === 'welcome') this.#ask(door)
        else this.#knockNext()
      },
      () => this.#knockNext(),
    )
  }

  #ask(door: string): void {
    const s = this.#s
    this.#phase = 'asking'
    s.requests.send(
      door,
      (rid) => ({ type: 'join', rid, guest: s.self, resumed: false, replyTo: s.self.address, hops: 0 }),
      { timeoutMs: JOIN_ACK_TIMEOUT_MS, resendMs: RESEND_MS * 2 },
      s.now,
      (reply, from) => this.#answered(reply, from),
      () => {
        if (this.#phase !== 'asking') return
        s.env.log.info({ door }, 'join request unanswered; trying another door')
        this.#phase = 'knocking'
        this.#knockNext()
      },
    )
  }

  #answered(reply: Reply, from: string): void {
    const s = this.#s
    if (this.#phase !== 'asking') return
    if (reply.type === 'joinQueued') {
      this.#phase = 'waiting'
      this.#until = s.now + s.timings.joinTimeoutMs
      if (reply.admitted) this.#hooks.fetchView(from)
    } else if (reply.type === 'joinRejected') {
      s.event('join_rejected')
      s.env.log.warn({ code: reply.code, reason: reply.message }, 'join rejected')
      if (reply.code === 'SUPERSEDED') {
        this.#phase = 'off'
        this.#hooks.superseded(reply.message)
      } else this.#backoff()
    }
  }

  #nobodyAnswered(): void {
    const s = this.#s
    this.#attempt++
    if (!this.#rejoin && this.#foundIfAlone && this.#attempt >= 2) {
      this.#phase = 'off'
      s.env.log.info({ doors: this.#doorsGiven }, 'no door answered; founding a party (--found-if-alone)')
      this.#hooks.found()
      return
    }
    this.#backoff()
    s.env.log.info(
      { doors: this.#doors, attempt: this.#attempt, retryInMs: Math.round(this.#until - s.now) },
      'no door answered (nothing listens there, it is unreachable, or it rejects our party key: see any warning above); retrying',
    )
  }

  #backoff(): void {
    this.#phase = 'backoff'
    this.#until = this.#s.now + backoffMs(this.#attempt, 200, this.#s.timings.joinRetryMaxMs, this.#s.env.random)
  }
}
