import { randomBytes } from 'node:crypto'
import type { Clock } from '../../shared/clock.ts'
import type { MembershipTimings } from '../../shared/config.ts'
import { HousePartyError } from '../../shared/errors.ts'
import { backoffMs, delay } from '../../shared/lifecycle.ts'
import type { Logger } from '../../shared/logger.ts'
import type { Messenger } from '../net/index.ts'
import type { Guest, GuestId, MessageOf, Reply, View } from '../protocol/index.ts'
import { freshRingId } from '../ring/index.ts'
import { COMMIT_DELIVERY_MS, JOIN_ACK_TIMEOUT_MS, KNOCK_TIMEOUT_MS, MAX_HOPS, MAX_NEWCOMERS_PER_CHANGE, QUEUED_JOIN_TTL_MS, RESEND_MS } from './constants.ts'
import { applyChange, checkNewcomer, coordinatorOf, diffViews, findGuest, foundingView, mayCoordinate, type Newcomer, viewDigest } from './view.ts'

export type MembershipStatus = 'idle' | 'joining' | 'guest' | 'leaving' | 'stopped'

export type MembershipEvent =
  | 'founded'
  | 'admitted'
  | 'rejoining'
  | 'guest_added'
  | 'guest_removed'
  | 'guest_left'
  | 'removed_self'
  | 'proposal_committed'
  | 'proposal_aborted'
  | 'view_synced'
  | 'join_rejected'

export interface ViewChange {
  before: View | undefined
  after: View
  added: Guest[]
  removed: Guest[]
}

export interface MembershipOptions {
  address: string
  apiPort: number
  /** An id to reuse if it is free (a restarted peer keeps its place on the ring). */
  preferredId?: GuestId | undefined
  /** Doors given by the user (--join); empty founds a new party. */
  join: readonly string[]
  foundIfAlone: boolean
  timings: MembershipTimings
  messenger: Messenger
  clock: Clock
  logger: Logger
  /** Expands door names (a headless Service resolves to many peers). */
  resolveDoors: (doors: readonly string[]) => Promise<string[]>
  onEvent?: (event: MembershipEvent) => void
  onIdChosen?: (id: GuestId) => void
}

interface PromiseMade {
  proposal: string
  baseEpoch: number
  expiresAt: number
}

interface QueuedJoin {
  newcomer: Newcomer
  replyTo: string
  rid: number
  expiresAt: number
}

/**
 * The guest list and every change to it.
 *
 * Changes (joins, removals) go to one coordinator: the first guest in
 * admission order that is not itself being removed. It batches queued
 * changes into the next view and runs a two-phase round: every remaining
 * guest must approve (prepare) before anyone installs it (commit). A guest
 * approves at most one proposal per epoch, so two would-be coordinators can
 * never both commit. Epochs ride on every ping, so a guest that missed a
 * commit catches up from whoever is ahead.
 */
export class Membership {
  readonly #o: MembershipOptions
  readonly #log: Logger
  #status: MembershipStatus = 'idle'
  #id: GuestId | undefined
  #view: View | undefined
  #lastKnownDoors: string[] = []
  #promise: PromiseMade | undefined
  readonly #joinQueue = new Map<GuestId, QueuedJoin>()
  readonly #removeQueue = new Map<GuestId, 'dead' | 'leave' | 'replaced'>()
  #driving = false
  #syncing = false
  #joinAbort = new AbortController()
  #preferredId: GuestId | undefined
  readonly #listeners = new Set<(change: ViewChange) => void>()
  readonly #admittedWaiters = new Set<() => void>()

  constructor(options: MembershipOptions) {
    this.#o = options
    this.#log = options.logger
    const m = options.messenger
    m.on('knock', (msg, from) => this.#onKnock(msg, from))
    m.on('join', (msg) => this.#onJoin(msg))
    m.on('remove', (msg, from) => this.#onRemove(msg, from))
    m.on('prepare', (msg, from) => this.#onPrepare(msg, from))
    m.on('abort', (msg) => this.#onAbort(msg))
    m.on('commit', (msg, from) => this.#onCommit(msg, from))
    m.on('viewRequest', (msg, from) => this.#onViewRequest(msg, from))
    m.on('hello', (msg, from) => this.#onHello(msg, from))
  }

  get status(): MembershipStatus {
    return this.#status
  }

  get id(): GuestId | undefined {
    return this.#id
  }

  get address(): string {
    return this.#o.address
  }

  /** The current guest list, or undefined while not a guest. */
  get view(): View | undefined {
    return this.#view
  }

  get isGuest(): boolean {
    return this.#status === 'guest' || this.#status === 'leaving'
  }

  /** Guests other than this peer. */
  others(): Guest[] {
    return this.#view?.guests.filter((g) => g.id !== this.#id) ?? []
  }

  isGuestId(id: GuestId): boolean {
    return findGuest(this.#view, id) !== undefined
  }

  onViewChange(listener: (change: ViewChange) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Starts joining (or founding). `preferredId` is reused if it is free: a restarted peer keeps its place. */
  start(preferredId?: GuestId): void {
    if (this.#status !== 'idle') return
    this.#preferredId = preferredId ?? this.#o.preferredId
    this.#status = 'joining'
    void this.#joinLoop(this.#joinAbort.signal, false)
  }

  /** Resolves once admitted (or founded). */
  admitted(signal?: AbortSignal): Promise<void> {
    if (this.isGuest) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const done = (): void => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      const onAbort = (): void => {
        this.#admittedWaiters.delete(done)
        reject(new HousePartyError('ERR_ABORTED', 'stopped waiting for admission'))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#admittedWaiters.add(done)
    })
  }

  stop(): void {
    this.#status = 'stopped'
    this.#joinAbort.abort()
  }

  /**
   * Graceful leave: ask the coordinator to remove this peer and wait until
   * the party confirms (a commit without us), or until the timeout.
   */
  async leave(): Promise<boolean> {
    if (!this.isGuest || !this.#view || !this.#id) {
      this.stop()
      return false
    }
    this.#status = 'leaving'
    const self = this.#id
    const deadline = this.#o.clock.monotonic() + this.#o.timings.leaveTimeoutMs
    let attempt = 0
    while (this.#view && findGuest(this.#view, self) && this.#o.clock.monotonic() < deadline) {
      const view = this.#view
      if (view.guests.length === 1) break
      const coordinator = coordinatorOf(view, new Set([self, ...this.#removeQueue.keys()]))
      if (!coordinator) break
      try {
        await this.#o.messenger.request(coordinator.address, (rid) => ({ type: 'remove', rid, from: self, target: self, reason: 'leave', hops: 0 }), {
          timeoutMs: 500,
          resendMs: RESEND_MS,
        })
        await this.#waitUntil(() => !this.#view || !findGuest(this.#view, self), Math.min(1000, deadline - this.#o.clock.monotonic()))
      } catch {
        await delay(backoffMs(attempt++, 50, 400))
      }
    }
    const confirmed = !this.#view || !findGuest(this.#view, self)
    this.stop()
    return confirmed
  }

  /** The failure detector's verdict: every vote said dead. */
  requestRemoval(target: GuestId, reason: 'dead' | 'leave'): void {
    const view = this.#view
    const self = this.#id
    if (!view || !self || !findGuest(view, target)) return
    const coordinator = coordinatorOf(view, new Set([target, ...this.#removeQueue.keys()]))
    if (!coordinator) return
    if (coordinator.id === self) {
      this.#removeQueue.set(target, reason)
      void this.#drive()
      return
    }
    this.#o.messenger
      .request(coordinator.address, (rid) => ({ type: 'remove', rid, from: self, target, reason, hops: 0 }), { timeoutMs: 600, resendMs: RESEND_MS })
      .catch((err) => this.#log.debug({ err: (err as Error).message, target }, 'removal request unanswered'))
  }

  /**
   * Someone told us their epoch (a ping, a pong, a notGuest). If they are
   * ahead, fetch their view; a view without us means we were removed.
   */
  noticeEpoch(epoch: number, from: string, saysNotGuest = false): void {
    if (this.#status === 'stopped' || this.#status === 'idle') return
    const mine = this.#view?.epoch ?? 0
    if (epoch > mine) void this.#syncFrom(from)
    else if (saysNotGuest && this.#status === 'guest' && epoch === mine) void this.#syncFrom(from)
  }

  // --- joining -----------------------------------------------------------------

  async #joinLoop(signal: AbortSignal, rejoin: boolean): Promise<void> {
    const t = this.#o.timings
    let preferred = this.#preferredId
    for (let attempt = 0; !signal.aborted; attempt++) {
      const mayFound = !rejoin && (this.#o.join.length === 0 || (this.#o.foundIfAlone && attempt >= 2))
      if (!rejoin && this.#o.join.length === 0) return this.#found(preferred)
      let doors: string[] = []
      try {
        doors = await this.#o.resolveDoors([...this.#o.join, ...this.#lastKnownDoors])
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'could not resolve doors')
      }
      doors = [...new Set(doors)].filter((d) => d !== this.#o.address)
      const welcome = await this.#knockAny(doors, signal)
      if (signal.aborted) return
      if (!welcome) {
        if (mayFound) return this.#found(preferred)
        const wait = backoffMs(attempt, 200, t.joinRetryMaxMs)
        this.#log.info({ doors, attempt, retryInMs: wait }, 'no door answered; retrying')
        await delay(wait, signal).catch(() => {})
        continue
      }
      this.#lastKnownDoors = welcome.view.guests.map((g) => g.address)
      const id =
        preferred !== undefined && checkNewcomer(welcome.view, this.#newcomer(preferred)).ok ? preferred : freshRingId(welcome.view.guests.map((g) => g.id))
      this.#id = id
      const outcome = await this.#askToJoin(welcome.door, id, signal)
      if (outcome === 'admitted') return
      if (outcome === 'id_taken') preferred = undefined
      await delay(backoffMs(attempt, 100, t.joinRetryMaxMs), signal).catch(() => {})
    }
  }

  async #knockAny(doors: string[], signal: AbortSignal): Promise<{ door: string; view: View } | undefined> {
    // Shuffle so a crowd of newcomers does not all lean on the first door.
    const order = [...doors].sort(() => Math.random() - 0.5)
    for (const door of order) {
      if (signal.aborted) return undefined
      try {
        const reply = await this.#o.messenger.request<Reply>(door, (rid) => ({ type: 'knock', rid, address: this.#o.address }), {
          timeoutMs: KNOCK_TIMEOUT_MS,
          resendMs: RESEND_MS,
          signal,
        })
        if (reply.type === 'welcome' && reply.view.guests.length > 0) return { door, view: reply.view }
      } catch {
        // This door is not answering; try the next.
      }
    }
    return undefined
  }

  async #askToJoin(door: string, id: GuestId, signal: AbortSignal): Promise<'admitted' | 'id_taken' | 'failed'> {
    const newcomer = this.#newcomer(id)
    try {
      const reply = await this.#o.messenger.request<Reply>(door, (rid) => ({ type: 'join', rid, guest: newcomer, replyTo: this.#o.address, hops: 0 }), {
        timeoutMs: JOIN_ACK_TIMEOUT_MS,
        resendMs: RESEND_MS * 2,
        signal,
      })
      if (reply.type === 'joinRejected') {
        this.#o.onEvent?.('join_rejected')
        this.#log.info({ code: reply.code, reason: reply.message }, 'join rejected')
        return reply.code === 'ID_TAKEN' ? 'id_taken' : 'failed'
      }
      if (this.isGuest) return 'admitted'
      await this.#waitUntil(() => this.isGuest, this.#o.timings.joinTimeoutMs, signal)
      return 'admitted'
    } catch (err) {
      if (this.isGuest) return 'admitted'
      this.#log.info({ door, err: (err as Error).message }, 'join attempt failed; will knock again')
      return 'failed'
    }
  }

  #found(preferred: GuestId | undefined): void {
    const id = preferred ?? freshRingId([])
    this.#id = id
    this.#log.info({ id }, 'founding a new party')
    this.#o.onEvent?.('founded')
    this.#install(foundingView(this.#newcomer(id)))
  }

  #newcomer(id: GuestId): Newcomer {
    return { id, address: this.#o.address, apiPort: this.#o.apiPort }
  }

  #becameGuest(): void {
    this.#status = 'guest'
    if (this.#id) this.#o.onIdChosen?.(this.#id)
    for (const w of this.#admittedWaiters) w()
    this.#admittedWaiters.clear()
    this.#sayHello()
  }

  /** Says hello to every guest: they learn our address is live, and the metrics count it. */
  #sayHello(): void {
    const self = this.#id
    const view = this.#view
    if (!self || !view) return
    for (const g of this.others()) {
      this.#o.messenger
        .request(g.address, (rid) => ({ type: 'hello', rid, from: self, epoch: view.epoch }), { timeoutMs: 1000, resendMs: 300 })
        .catch(() => this.#log.debug({ guest: g.id }, 'hello unanswered'))
    }
  }

  #waitUntil(condition: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (condition()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!condition()) return
        cleanup()
        resolve()
      }
      const unsubscribe = this.onViewChange(check)
      const onAdmit = (): void => check()
      this.#admittedWaiters.add(onAdmit)
      const timer = setTimeout(
        () => {
          cleanup()
          condition() ? resolve() : reject(new HousePartyError('ERR_TIMEOUT', `condition not met within ${timeoutMs} ms`))
        },
        Math.max(0, timeoutMs),
      )
      const onAbort = (): void => {
        cleanup()
        reject(new HousePartyError('ERR_ABORTED', 'aborted'))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      const cleanup = (): void => {
        clearTimeout(timer)
        unsubscribe()
        this.#admittedWaiters.delete(onAdmit)
        signal?.removeEventListener('abort', onAbort)
      }
    })
  }

  // --- installing views --------------------------------------------------------

  #install(next: View): void {
    const before = this.#view
    if (before && next.epoch <= before.epoch) return
    const self = this.#id
    const me = self === undefined ? undefined : findGuest(next, self)
    if (!me || me.address !== this.#o.address) {
      if (this.#status === 'guest' || this.#status === 'leaving') this.#removedFromParty(next)
      return
    }
    this.#view = next
    if (this.#promise && this.#promise.baseEpoch < next.epoch) this.#promise = undefined
    for (const id of this.#removeQueue.keys()) if (!findGuest(next, id)) this.#removeQueue.delete(id)
    const diff = diffViews(before, next)
    this.#log.info(
      { epoch: next.epoch, guests: next.guests.length, digest: viewDigest(next), added: diff.added.map((g) => g.id), removed: diff.removed.map((g) => g.id) },
      'guest list changed',
    )
    if (before) {
      for (const _ of diff.added) this.#o.onEvent?.('guest_added')
      for (const _ of diff.removed) this.#o.onEvent?.('guest_removed')
    }
    const wasJoining = this.#status === 'joining'
    if (wasJoining) {
      this.#o.onEvent?.('admitted')
      this.#becameGuest()
    }
    for (const l of this.#listeners) l({ before, after: next, added: diff.added, removed: diff.removed })
  }

  /** A view without us arrived: we were declared dead (or left). Rejoin unless leaving. */
  #removedFromParty(next: View): void {
    const before = this.#view
    const leaving = this.#status === 'leaving'
    this.#lastKnownDoors = next.guests.map((g) => g.address)
    this.#view = undefined
    this.#promise = undefined
    this.#joinQueue.clear()
    this.#removeQueue.clear()
    if (before) for (const l of this.#listeners) l({ before, after: { epoch: next.epoch, guests: [] }, added: [], removed: before.guests })
    if (leaving) {
      this.#o.onEvent?.('guest_left')
      return
    }
    this.#log.warn({ epoch: next.epoch }, 'this peer was removed from the party; rejoining')
    this.#o.onEvent?.('removed_self')
    this.#o.onEvent?.('rejoining')
    this.#status = 'joining'
    this.#joinAbort.abort()
    this.#joinAbort = new AbortController()
    void this.#joinLoop(this.#joinAbort.signal, true)
  }

  async #syncFrom(address: string): Promise<void> {
    if (this.#syncing) return
    this.#syncing = true
    try {
      const reply = await this.#o.messenger.request<Reply>(address, (rid) => ({ type: 'viewRequest', rid }), { timeoutMs: 500, resendMs: RESEND_MS })
      if (reply.type === 'viewState' && reply.view.epoch > (this.#view?.epoch ?? 0)) {
        this.#o.onEvent?.('view_synced')
        this.#install(reply.view)
      }
    } catch {
      // The next ping will tell us again.
    } finally {
      this.#syncing = false
    }
  }

  // --- answering guests and newcomers ---------------------------------------------

  #onKnock(msg: MessageOf<'knock'>, from: string): void {
    if (!this.isGuest || !this.#view) return // only guests open the door
    this.#o.messenger.send(from, { type: 'welcome', re: msg.rid, view: this.#view })
  }

  #onViewRequest(msg: MessageOf<'viewRequest'>, from: string): void {
    if (!this.#view) return
    this.#o.messenger.send(from, { type: 'viewState', re: msg.rid, view: this.#view })
  }

  #onHello(msg: MessageOf<'hello'>, from: string): void {
    if (!this.#id) return
    this.#o.messenger.send(from, { type: 'helloAck', re: msg.rid, from: this.#id })
    this.noticeEpoch(msg.epoch, from)
  }

  #onJoin(msg: MessageOf<'join'>): void {
    const view = this.#view
    const self = this.#id
    if (!view || !self || this.#status !== 'guest') return
    const coordinator = coordinatorOf(view, new Set(this.#removeQueue.keys()))
    if (!coordinator) return
    if (coordinator.id !== self) {
      if (msg.hops < MAX_HOPS) this.#o.messenger.send(coordinator.address, { ...msg, hops: msg.hops + 1 })
      return
    }
    const existing = findGuest(view, msg.guest.id)
    if (existing && existing.address === msg.guest.address && existing.apiPort === msg.guest.apiPort) {
      // Admitted already (the commit was lost, or this is the same peer restarted): send the view again.
      this.#o.messenger.send(msg.replyTo, { type: 'joinQueued', re: msg.rid, coordinator: self })
      this.#deliverCommit(view, '0000000000000000', [existing])
      return
    }
    const check = checkNewcomer(
      view,
      msg.guest,
      [...this.#joinQueue.values()].map((q) => q.newcomer).filter((n) => n.id !== msg.guest.id),
    )
    if (!check.ok) {
      this.#o.messenger.send(msg.replyTo, { type: 'joinRejected', re: msg.rid, code: check.code, message: `id ${msg.guest.id} is taken; pick another` })
      return
    }
    this.#joinQueue.set(msg.guest.id, { newcomer: msg.guest, replyTo: msg.replyTo, rid: msg.rid, expiresAt: this.#o.clock.monotonic() + QUEUED_JOIN_TTL_MS })
    this.#o.messenger.send(msg.replyTo, { type: 'joinQueued', re: msg.rid, coordinator: self })
    void this.#drive()
  }

  #onRemove(msg: MessageOf<'remove'>, from: string): void {
    const view = this.#view
    const self = this.#id
    if (!view || !self || !this.isGuest) return
    const reply = (coordinator: GuestId): void => this.#o.messenger.send(from, { type: 'removeQueued', re: msg.rid, coordinator })
    if (!findGuest(view, msg.target)) return reply(self)
    const coordinator = coordinatorOf(view, new Set([msg.target, ...this.#removeQueue.keys()]))
    if (!coordinator) return
    if (coordinator.id === self) {
      this.#removeQueue.set(msg.target, msg.reason)
      reply(self)
      void this.#drive()
    } else if (msg.hops < MAX_HOPS) {
      this.#o.messenger.send(coordinator.address, { ...msg, hops: msg.hops + 1 })
      reply(coordinator.id)
    }
  }

  #onPrepare(msg: MessageOf<'prepare'>, from: string): void {
    const view = this.#view
    const self = this.#id
    if (!view || !self || !this.isGuest) return
    const no = (code: 'BUSY' | 'STALE' | 'AHEAD' | 'NOT_COORDINATOR' | 'REJECTED', withView?: View): void =>
      this.#o.messenger.send(from, { type: 'prepareNo', re: msg.rid, from: self, code, ...(withView ? { view: withView } : {}) })
    if (msg.baseEpoch < view.epoch) return no('AHEAD', view)
    if (msg.baseEpoch > view.epoch) {
      void this.#syncFrom(from)
      return no('STALE')
    }
    if (!mayCoordinate(view, msg.from, msg.removed)) return no('NOT_COORDINATOR')
    if (msg.view.epoch !== view.epoch + 1) return no('REJECTED')
    const now = this.#o.clock.monotonic()
    const p = this.#promise
    if (p && p.baseEpoch === view.epoch && p.proposal !== msg.proposal && p.expiresAt > now) return no('BUSY')
    this.#promise = { proposal: msg.proposal, baseEpoch: view.epoch, expiresAt: now + 2 * this.#o.timings.proposalTimeoutMs }
    this.#o.messenger.send(from, { type: 'prepareOk', re: msg.rid, from: self })
  }

  #onAbort(msg: MessageOf<'abort'>): void {
    if (this.#promise?.proposal === msg.proposal) this.#promise = undefined
  }

  #onCommit(msg: MessageOf<'commit'>, from: string): void {
    this.#install(msg.view)
    if (this.#promise?.proposal === msg.proposal) this.#promise = undefined
    this.#o.messenger.send(from, { type: 'commitAck', re: msg.rid, from: this.#id ?? '0000000000000000', epoch: this.#view?.epoch ?? 0 })
  }

  // --- coordinating ---------------------------------------------------------------

  /** Runs queued changes through prepare/commit rounds, one at a time. */
  async #drive(): Promise<void> {
    if (this.#driving) return
    this.#driving = true
    try {
      for (let attempt = 0; this.isGuest && (this.#joinQueue.size > 0 || this.#removeQueue.size > 0); ) {
        const view = this.#view
        const self = this.#id
        if (!view || !self) break
        const now = this.#o.clock.monotonic()
        for (const [id, q] of this.#joinQueue) {
          const g = findGuest(view, id)
          if (q.expiresAt < now || g?.address === q.newcomer.address) this.#joinQueue.delete(id)
        }
        for (const id of this.#removeQueue.keys()) if (!findGuest(view, id)) this.#removeQueue.delete(id)
        if (this.#joinQueue.size === 0 && this.#removeQueue.size === 0) break
        const coordinator = coordinatorOf(view, new Set(this.#removeQueue.keys()))
        if (coordinator?.id !== self) {
          // No longer ours to coordinate; requesters retry with the new coordinator.
          this.#joinQueue.clear()
          this.#removeQueue.clear()
          break
        }
        const removed = new Set(this.#removeQueue.keys())
        const newcomers: Newcomer[] = []
        for (const q of [...this.#joinQueue.values()].slice(0, MAX_NEWCOMERS_PER_CHANGE)) {
          const check = checkNewcomer(view, q.newcomer, newcomers)
          if (!check.ok) {
            this.#joinQueue.delete(q.newcomer.id)
            this.#o.messenger.send(q.replyTo, { type: 'joinRejected', re: q.rid, code: check.code, message: 'id taken' })
            continue
          }
          for (const r of check.replaces) if (r !== self) removed.add(r)
          if (check.replaces.includes(self)) continue // someone claims our own address: not while we live
          newcomers.push(q.newcomer)
        }
        if (newcomers.length === 0 && removed.size === 0) break
        const outcome = await this.#propose(view, self, newcomers, [...removed])
        if (outcome === 'committed') attempt = 0
        else if (outcome === 'failed') await delay(backoffMs(attempt++, 40, 1000))
      }
    } finally {
      this.#driving = false
    }
  }

  async #propose(view: View, self: GuestId, newcomers: Newcomer[], removed: GuestId[]): Promise<'committed' | 'adopted' | 'failed'> {
    const now = this.#o.clock.monotonic()
    const mine = this.#promise
    if (mine && mine.baseEpoch === view.epoch && mine.expiresAt > now) return 'failed' // we promised another proposer
    const proposal = randomBytes(8).toString('hex')
    const next = applyChange(view, newcomers, removed)
    this.#promise = { proposal, baseEpoch: view.epoch, expiresAt: now + 2 * this.#o.timings.proposalTimeoutMs }
    const gone = new Set(removed)
    const approvers = view.guests.filter((g) => g.id !== self && !gone.has(g.id))
    const results = await Promise.allSettled(
      approvers.map((g) =>
        this.#o.messenger.request<Reply>(g.address, (rid) => ({ type: 'prepare', rid, from: self, proposal, baseEpoch: view.epoch, view: next, removed }), {
          timeoutMs: this.#o.timings.proposalTimeoutMs,
          resendMs: RESEND_MS,
        }),
      ),
    )
    let approved = true
    let ahead: View | undefined
    const refusals: string[] = []
    results.forEach((r, i) => {
      if (r.status === 'fulfilled' && r.value.type === 'prepareOk') return
      approved = false
      const who = approvers[i]?.id ?? '?'
      if (r.status === 'fulfilled' && r.value.type === 'prepareNo') {
        refusals.push(`${who}:${r.value.code}`)
        if (r.value.code === 'AHEAD' && r.value.view && r.value.view.epoch > (ahead?.epoch ?? 0)) ahead = r.value.view
      } else refusals.push(`${who}:timeout`)
    })
    const stillCurrent = this.#view?.epoch === view.epoch && this.#promise?.proposal === proposal
    if (!approved || !stillCurrent) {
      for (const g of approvers) this.#o.messenger.send(g.address, { type: 'abort', from: self, proposal })
      if (this.#promise?.proposal === proposal) this.#promise = undefined
      this.#o.onEvent?.('proposal_aborted')
      this.#log.info({ epoch: next.epoch, refusals }, 'view change aborted')
      if (ahead) this.#install(ahead)
      return ahead || !stillCurrent ? 'adopted' : 'failed'
    }
    this.#o.onEvent?.('proposal_committed')
    for (const n of newcomers) this.#joinQueue.delete(n.id)
    for (const r of removed) this.#removeQueue.delete(r)
    const removedGuests = view.guests.filter((g) => gone.has(g.id))
    this.#install(next)
    this.#deliverCommit(next, proposal, [...next.guests.filter((g) => g.id !== self), ...removedGuests])
    return 'committed'
  }

  /** Sends the commit to each target until it acknowledges (or gives up: gossip will catch it up). */
  #deliverCommit(view: View, proposal: string, targets: Guest[]): void {
    const self = this.#id
    if (!self) return
    for (const g of targets) {
      this.#o.messenger
        .request(g.address, (rid) => ({ type: 'commit', rid, from: self, proposal, view }), { timeoutMs: COMMIT_DELIVERY_MS, resendMs: RESEND_MS })
        .catch(() => this.#log.debug({ guest: g.id, epoch: view.epoch }, 'commit not acknowledged'))
    }
  }
}
