import type { Clock } from '../../shared/clock.ts'
import type { MembershipTimings } from '../../shared/config.ts'
import { HousePartyError } from '../../shared/errors.ts'
import type { Logger } from '../../shared/logger.ts'
import type { Messenger } from '../net/index.ts'
import type { Domains, Guest, GuestId, LeaveReason, Newcomer, View } from '../protocol/index.ts'
import { TICK_MS } from './constants.ts'
import { MembershipCore } from './core.ts'
import type { CoreOutput, MembershipEvent, MembershipStatus, PersistedMembership, ViewChange } from './state.ts'
import { findGuest } from './view.ts'

export interface MembershipOptions {
  /** This peer: its identity (kept for life, from the data dir), where it listens, its API port. */
  self: Newcomer
  /** Doors given by the user (--join); empty founds a new party. */
  join: readonly string[]
  foundIfAlone: boolean
  timings: MembershipTimings
  messenger: Messenger
  clock: Clock
  logger: Logger
  /** Expands door names (a headless Service resolves to many peers). */
  resolveDoors: (doors: readonly string[]) => Promise<string[]>
  /** Bytes of fragments this peer holds, told to the others in pings. */
  heldBytes: () => number
  /** Where the membership state lives across restarts (the data dir); without it every start joins afresh. */
  state?: { load(): PersistedMembership | undefined; save(state: PersistedMembership): void }
  onEvent?: (event: MembershipEvent) => void
  /** A vote found a guest dead, `silentMs` after its last word. */
  onDeathDeclared?: (id: GuestId, silentMs: number) => void
  /** A datagram nobody waited for (a late reply). */
  onUnexpected?: () => void
  random?: () => number
}

/**
 * The membership core (core.ts) on a real socket and a real clock: datagrams
 * in, ticks every TICK_MS, door names resolved through DNS. Everything it
 * decides comes from the core; this class only turns its outputs into
 * listeners, promises and metrics.
 */
export class Membership {
  readonly #o: MembershipOptions
  readonly #core: MembershipCore
  readonly #listeners = new Set<(change: ViewChange) => void>()
  readonly #statusWaiters = new Set<() => void>()
  #timer: NodeJS.Timeout | undefined

  constructor(options: MembershipOptions) {
    this.#o = options
    const { clock, logger } = options
    this.#core = new MembershipCore(
      { self: options.self, join: options.join, foundIfAlone: options.foundIfAlone, timings: options.timings, restored: options.state?.load() },
      {
        send: (to, msg) => options.messenger.send(to, msg),
        random: options.random ?? Math.random,
        resolveDoors: (doors) => {
          options
            .resolveDoors(doors)
            .catch((err: Error) => {
              logger.warn({ err: err.message }, 'could not resolve doors')
              return []
            })
            .then((resolved) => this.#core.doorsResolved(resolved, clock.monotonic()))
        },
        heldBytes: options.heldBytes,
        persist: (state) => {
          try {
            options.state?.save(state)
          } catch (err) {
            // Without a durable promise this guest must not answer as if it had one: stop rather than risk two lists at one epoch.
            logger.fatal({ err: (err as Error).message }, 'cannot save the membership state; stopping')
            process.exit(1)
          }
        },
        output: (out) => this.#output(out),
        log: logger,
      },
    )
    options.messenger.onMessage((msg, from) => this.#core.receive(from, msg, clock.monotonic()))
  }

  get status(): MembershipStatus {
    return this.#core.status
  }

  /** Where this peer runs, said before it starts (it may be read from Kubernetes at start): its knocks and updates carry it. */
  announceDomains(domains: Domains): void {
    if (this.#timer) throw new Error('domains are announced before membership starts')
    if (Object.keys(domains).length > 0) this.#core.self.domains = domains
    else delete this.#core.self.domains
  }

  /** This peer's ring id, kept for life. */
  get id(): GuestId {
    return this.#core.self.id
  }

  get address(): string {
    return this.#core.self.address
  }

  /** The current guest list, or undefined while not a guest. */
  get view(): View | undefined {
    return this.#core.view
  }

  get isGuest(): boolean {
    return this.#core.isGuest
  }

  /** A guest that every other guest knows at its current address (see MembershipCore.knownToAll). */
  get knownToAll(): boolean {
    return this.#core.knownToAll
  }

  /** Guests other than this peer. */
  others(): readonly Guest[] {
    return this.#core.others()
  }

  /**
   * Where to reach a guest now: the address its last authenticated datagram
   * came from, else the one on the list. A pod restarted with a new IP keeps
   * its DNS name on the list, and DNS may answer with the old IP for a while;
   * its own pings say where it is at once.
   */
  addressOf(id: GuestId): string | undefined {
    const g = findGuest(this.#core.view, id)
    return g ? this.#core.addressOf(g) : undefined
  }

  isGuestId(id: GuestId): boolean {
    return findGuest(this.#core.view, id) !== undefined
  }

  /** Bytes a guest last said it holds (placement balances on them). */
  heldBytes(id: GuestId): number | undefined {
    return this.#core.heldBytes(id)
  }

  /**
   * Why this peer's own picture of the party may be out of date now, or undefined: it is not a guest, or its event
   * loop was paused lately (SIGSTOP, a long collection), so the others may have voted it out and gone on without it
   * (repaired, moved and recorded what it still remembers otherwise). Nothing is decided on such a picture.
   */
  uncertain(): string | undefined {
    if (!this.isGuest) return 'it is not a guest of the party'
    if (this.#core.lag.recentlyPaused(this.#o.clock.monotonic())) return 'it was paused lately, and the party may have changed without it'
    return undefined
  }

  /** This peer's own event-loop lag, ms. */
  lag(): number {
    return this.#core.lag.lag(this.#o.clock.monotonic())
  }

  onViewChange(listener: (change: ViewChange) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Starts joining (or founding) and ticking. */
  start(): void {
    this.#core.start(this.#o.clock.monotonic())
    this.#timer = setInterval(() => this.#core.tick(this.#o.clock.monotonic()), TICK_MS)
  }

  /** Resolves once admitted (or founded); rejects if this peer stops first. */
  admitted(signal?: AbortSignal): Promise<void> {
    return this.#until(() => this.isGuest, ['stopped', 'superseded', 'left'], signal)
  }

  /** Resolves when the core reaches a status that ends this process's membership (superseded, left, stopped). */
  ended(): Promise<MembershipStatus> {
    const done = (): boolean => ['superseded', 'left', 'stopped'].includes(this.status)
    return new Promise((resolve) => {
      if (done()) return resolve(this.status)
      const check = (): void => {
        if (!done()) return
        this.#statusWaiters.delete(check)
        resolve(this.status)
      }
      this.#statusWaiters.add(check)
    })
  }

  /**
   * Graceful leave: asks the coordinator to remove this peer and waits until
   * a guest list without it arrives, or until --leave-timeout-ms. True when
   * the party confirmed.
   */
  async leave(reason: LeaveReason = 'leave'): Promise<boolean> {
    this.#core.leave(this.#o.clock.monotonic(), reason)
    try {
      await this.#until(() => this.status === 'left', ['stopped', 'superseded'], AbortSignal.timeout(this.#o.timings.leaveTimeoutMs))
    } catch {
      // Not confirmed in time: the others will notice the silence.
    }
    const confirmed = this.status === 'left'
    this.stop()
    return confirmed
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    if (this.status !== 'left' && this.status !== 'superseded') this.#core.stop(this.#o.clock.monotonic())
  }

  #until(condition: () => boolean, failOn: readonly MembershipStatus[], signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (condition()) finish()
        else if (failOn.includes(this.status)) finish(new HousePartyError('ERR_ABORTED', `membership ${this.status}`))
        else if (signal?.aborted) finish(new HousePartyError('ERR_ABORTED', 'stopped waiting'))
      }
      const finish = (err?: Error): void => {
        this.#statusWaiters.delete(check)
        signal?.removeEventListener('abort', check)
        err ? reject(err) : resolve()
      }
      this.#statusWaiters.add(check)
      signal?.addEventListener('abort', check, { once: true })
      check()
    })
  }

  #output(out: CoreOutput): void {
    switch (out.kind) {
      case 'event':
        return this.#o.onEvent?.(out.event)
      case 'deathDeclared':
        return this.#o.onDeathDeclared?.(out.id, out.silentMs)
      case 'unexpected':
        return this.#o.onUnexpected?.()
      case 'view':
        for (const l of this.#listeners) l(out.change)
        for (const w of [...this.#statusWaiters]) w()
        return
      case 'status':
        for (const w of [...this.#statusWaiters]) w()
        return
      case 'accepted':
        return
    }
  }
}
