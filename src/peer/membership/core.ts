import type { MembershipTimings } from '../../shared/config.ts'
import {
  type Change,
  type Guest,
  type GuestId,
  isOwnLeave,
  type LeaveReason,
  type Message,
  type MessageOf,
  type Newcomer,
  type View,
} from '../protocol/index.ts'
import { Acceptor } from './acceptor.ts'
import { MAX_STRETCH_MS, TICK_MS } from './constants.ts'
import { Coordinator } from './coordinator.ts'
import { Detector } from './detector.ts'
import { Joiner } from './joiner.ts'
import { LagMeter } from './lag.ts'
import { Requests } from './requests.ts'
import type { CoreEnv, CoreOptions, MembershipEvent, MembershipStatus, PersistedMembership, Shared } from './state.ts'
import { applyChange, diffViews, findGuest, foundingView, isQuorum, removalReasons, viewDigest } from './view.ts'
import { ViewSync } from './view-sync.ts'

/**
 * Membership as a deterministic state machine (the shape of etcd's raft):
 * it is stepped by messages, ticks and a few local calls, each with the
 * current monotonic time, and acts only through its environment (send,
 * random, resolve doors, outputs). It owns no socket, timer or clock, so a
 * simulator can run hundreds of real cores on one virtual clock, and the
 * driver (membership.ts) is a thin shell around it.
 *
 * The roles are separate files: the joiner (knock, join, rejoin), the
 * detector (pings, ping-voting, lag), the acceptor and the coordinator
 * (deciding each next view), and view sync (catching up on a missed view).
 */
export class MembershipCore implements Shared {
  readonly self: Newcomer
  readonly timings: MembershipTimings
  readonly env: CoreEnv
  readonly requests: Requests
  readonly lag: LagMeter
  readonly #detector: Detector
  readonly #acceptor: Acceptor
  readonly #coordinator: Coordinator
  readonly #joiner: Joiner
  readonly #viewSync: ViewSync
  #now = 0
  #status: MembershipStatus = 'idle'
  #view: View | undefined
  #others: Guest[] = []
  /** The guests of the current list by id (every datagram is checked against it). */
  #byId = new Map<GuestId, Guest>()
  /** Guest id → the address its last authenticated message came from. */
  readonly #seenAt = new Map<GuestId, string>()
  /** The highest epoch this peer was ever on, kept while it rejoins: an older list never reinstates it. */
  #floorEpoch = 0
  readonly #restored: PersistedMembership | undefined
  /** The list names an earlier start of this peer: ask (now and then) for the entry to point at this one. */
  #needsUpdate = false
  /** The epoch of the first list holding this start's entry as it is (undefined: not on one yet). */
  #entryEpoch: number | undefined
  #nextUpdateAt = 0
  /** Since when this guest has heard from less than a quorum of its list (undefined: it hears from enough). */
  #cutOffSince: number | undefined
  #nextCutOffCheckAt = 0
  #nextDoorProbeAt = 0

  constructor(options: CoreOptions, env: CoreEnv) {
    this.self = options.self
    this.timings = options.timings
    this.env = env
    this.#restored = options.restored
    this.requests = new Requests((to, msg) => env.send(to, msg), Math.floor(env.random() * 2 ** 31))
    // A tick later than half a silence period is a pause; after one, this peer distrusts what it saw for a vote's length.
    this.lag = new LagMeter(TICK_MS, options.timings.suspectAfterMs / 2, 2 * options.timings.suspectAfterMs + options.timings.voteTimeoutMs)
    this.#detector = new Detector(this, (id) => this.#coordinator.removeDead(id))
    this.#acceptor = new Acceptor(this, (id, ms) => this.#detector.heardWithin(id, ms))
    this.#coordinator = new Coordinator(this, this.#acceptor, this.#detector, (next, change) => this.#install(next, change))
    // A data dir that was on a party never founds another one on its own: it knocks until that party answers.
    const earlierParty = (options.restored?.floorEpoch ?? 0) > 0
    this.#joiner = new Joiner(
      this,
      { ...options, foundIfAlone: options.foundIfAlone && !earlierParty },
      {
        found: () => this.#found(),
        fetchView: (address) => this.#viewSync.fetch(address),
        superseded: (message) => this.#superseded(message),
      },
    )
    this.#viewSync = new ViewSync(this, (view) => this.#install(view))
  }

  // --- Shared ------------------------------------------------------------------------

  get now(): number {
    return this.#now
  }

  get status(): MembershipStatus {
    return this.#status
  }

  get view(): View | undefined {
    return this.#view
  }

  others(): readonly Guest[] {
    return this.#others
  }

  addressOf(g: Guest): string {
    return this.#seenAt.get(g.id) ?? g.address
  }

  event(event: MembershipEvent): void {
    this.env.output({ kind: 'event', event })
  }

  stretch(id?: GuestId): number {
    const theirs = id === undefined ? this.#detector.worstLag() : this.#detector.lagOf(id)
    return Math.min(MAX_STRETCH_MS, Math.max(this.lag.lag(this.#now), theirs))
  }

  persist(): void {
    this.env.persist({ view: this.#view, floorEpoch: this.#floorEpoch, acceptor: this.#acceptor.state() })
  }

  noticeEpoch(epoch: number, address: string): void {
    const s = this.#status
    if ((s === 'guest' || s === 'leaving' || s === 'joining') && epoch > (this.#view?.epoch ?? this.#floorEpoch)) this.#viewSync.fetch(address)
  }

  // --- queries -------------------------------------------------------------------------

  get isGuest(): boolean {
    return this.#status === 'guest' || this.#status === 'leaving'
  }

  /**
   * A guest whose entry (this start, at this address) every other guest has
   * installed, as their pings and pongs show. Until then some guest may not
   * reach this peer's fragments yet: a rolling update that stops the next pod
   * at that moment could leave a file short of k fragments somewhere.
   */
  get knownToAll(): boolean {
    return this.#status === 'guest' && this.#entryEpoch !== undefined && this.#detector.allAt(this.#entryEpoch)
  }

  /** Bytes the guest last said it holds (this peer's own from the environment). */
  heldBytes(id: GuestId): number | undefined {
    return id === this.self.id ? this.env.heldBytes() : this.#detector.heldBytes(id)
  }

  // --- stepping ------------------------------------------------------------------------

  /**
   * Starts: resumes as a guest of the list saved by an earlier start on this
   * data dir (with its votes), or else knocks (or founds).
   */
  start(now: number): void {
    if (this.#status !== 'idle') return
    this.#now = now
    this.lag.tick(now)
    const restored = this.#restored
    this.#floorEpoch = restored?.floorEpoch ?? 0
    const me = restored?.view && findGuest(restored.view, this.self.id)
    if (restored?.view && me && me.incarnation < this.self.incarnation) {
      this.env.log.info({ epoch: restored.view.epoch, guests: restored.view.guests.length }, 'resuming as a guest of the list this data dir was on')
      this.#acceptor.restore(restored.acceptor, restored.view.epoch)
      this.#setStatus('guest')
      this.event('resumed')
      this.#install(restored.view, undefined, true)
      return
    }
    if (this.#floorEpoch > 0)
      this.env.log.info({ epoch: this.#floorEpoch }, 'this data dir was on a party; knocking until it answers (it never founds a new one on its own)')
    this.#setStatus('joining')
    this.#joiner.start(false)
  }

  doorsResolved(doors: readonly string[], now: number): void {
    this.#now = now
    if (this.#status === 'joining') this.#joiner.doorsResolved(doors)
    else if (this.isGuest) this.#knockForNews(doors)
  }

  /**
   * A guest that has heard from less than a quorum of its list for a while
   * may be on a list the party left behind (it was cut off, and the others
   * moved on, perhaps at new addresses). It knocks on its doors now and then:
   * a guest at a newer epoch tells it where the party is.
   */
  #probeIfCutOff(): void {
    const view = this.#view
    const now = this.#now
    if (!view || now < this.#nextCutOffCheckAt) return
    this.#nextCutOffCheckAt = now + this.timings.pingIntervalMs
    if (isQuorum(view, this.#detector.inTouch())) {
      this.#cutOffSince = undefined
      return
    }
    this.#cutOffSince ??= now
    if (now - this.#cutOffSince < this.timings.suspectAfterMs || now < this.#nextDoorProbeAt) return
    this.#nextDoorProbeAt = now + this.timings.suspectAfterMs * (2 + this.env.random())
    this.env.resolveDoors(this.#joiner.doors(view.guests.map((g) => this.addressOf(g))))
  }

  #knockForNews(doors: readonly string[]): void {
    for (const door of doors) {
      if (door === this.self.address) continue
      this.requests.send(
        door,
        (rid) => ({ type: 'knock', rid, address: this.self.address }),
        { timeoutMs: this.timings.suspectAfterMs, resendMs: this.timings.suspectAfterMs / 3 },
        this.#now,
        (reply, from) => {
          if (reply.type === 'welcome') this.noticeEpoch(reply.epoch, from)
        },
      )
    }
  }

  tick(now: number): void {
    if (this.#status === 'idle' || this.#status === 'stopped' || this.#status === 'superseded' || this.#status === 'left') return
    this.#now = now
    const paused = this.lag.tick(now)
    if (paused !== undefined) {
      this.event('pause_detected')
      this.env.log.warn({ pausedMs: Math.round(paused) }, 'event loop was paused; restarting every silence clock')
      this.#detector.pauseEnded()
    }
    this.requests.tick(now)
    if (this.#status === 'joining') this.#joiner.tick()
    else if (this.isGuest) {
      this.#detector.tick()
      this.#coordinator.tick()
      if (this.#needsUpdate && now >= this.#nextUpdateAt) {
        this.#nextUpdateAt = now + this.timings.suspectAfterMs
        this.#coordinator.requestUpdate()
      }
      this.#probeIfCutOff()
    }
  }

  receive(from: string, msg: Message, now: number): void {
    if (this.#status === 'idle' || this.#status === 'stopped' || this.#status === 'superseded') return
    this.#now = now
    // Any authenticated word from a guest proves it alive, and says where it is now.
    if ('from' in msg && this.#byId.has(msg.from)) {
      this.#seenAt.set(msg.from, from)
      this.#detector.heard(msg.from)
    }
    switch (msg.type) {
      case 'ping':
        return this.#detector.onPing(msg, from)
      case 'pong':
        this.#detector.onPong(msg, from)
        this.requests.reply(msg, from)
        return
      case 'notGuest':
        // A guest told "not a guest here" by a peer at a newer epoch may have been removed: fetch and see.
        if (this.isGuest) this.noticeEpoch(msg.epoch, from)
        this.requests.reply(msg, from)
        return
      case 'pingReq':
        return this.#detector.onPingReq(msg, from)
      case 'knock':
        return this.#onKnock(msg, from)
      case 'join':
        return this.#coordinator.onJoin(msg)
      case 'hello':
        this.env.send(from, { type: 'helloAck', re: msg.rid, from: this.self.id })
        return this.noticeEpoch(msg.epoch, from)
      case 'remove':
        return this.#coordinator.onRemove(msg, from)
      case 'prepare':
        return this.#acceptor.onPrepare(msg, from)
      case 'accept':
        return this.#acceptor.onAccept(msg, from)
      case 'commit':
        return this.#onCommit(msg, from)
      case 'viewRequest':
        return this.#viewSync.serve(msg, from)
      default:
        if (!this.requests.reply(msg, from)) this.env.output({ kind: 'unexpected' })
    }
  }

  /** Asks to leave the party (for good, or for a restart). The status turns 'left' once a guest list without this peer arrives. */
  leave(now: number, reason: LeaveReason = 'leave'): void {
    this.#now = now
    if (this.#status !== 'guest' || !this.#view) {
      if (this.#status !== 'left') this.stop(now)
      return
    }
    if (this.#view.guests.length === 1) {
      this.#leaveParty('left')
      return
    }
    this.#setStatus('leaving')
    this.#coordinator.leave(reason)
  }

  stop(now: number): void {
    this.#now = now
    this.requests.cancelAll()
    this.#joiner.stop()
    this.#setStatus('stopped')
  }

  // --- answering ----------------------------------------------------------------------

  #onKnock(msg: MessageOf<'knock'>, from: string): void {
    const view = this.#view
    // Only guests open the door, and not one that is on its way out; others say so at once, so the knocker tries the next door.
    if (this.#status !== 'guest' || !view) {
      this.env.send(from, { type: 'notGuest', re: msg.rid, epoch: this.#view?.epoch ?? 0 })
      return
    }
    const coordinator = this.#coordinator.coordinator() ?? findGuest(view, this.self.id)
    this.env.send(from, {
      type: 'welcome',
      re: msg.rid,
      from: this.self.id,
      epoch: view.epoch,
      guests: view.guests.length,
      coordinator: coordinator?.address ?? this.self.address,
    })
  }

  #onCommit(msg: MessageOf<'commit'>, from: string): void {
    const view = this.#view
    if (view && msg.baseEpoch === view.epoch) {
      const next = applyChange(view, msg.change)
      if (viewDigest(next) === msg.digest) this.#install(next, msg.change)
      else this.#viewSync.fetch(from)
    } else if (!view && this.#status === 'joining' && msg.change.add.some((n) => n.id === this.self.id && n.incarnation === this.self.incarnation)) {
      // Admitted: the commit only says what changed, so fetch the whole list.
      this.#viewSync.fetch(from)
    } else this.noticeEpoch(msg.baseEpoch + 1, from)
    this.env.send(from, { type: 'commitAck', re: msg.rid, from: this.self.id, epoch: this.#view?.epoch ?? 0 })
  }

  // --- installing views ---------------------------------------------------------------

  #found(): void {
    this.env.log.info({ id: this.self.id }, 'founding a new party')
    this.event('founded')
    this.#install(foundingView(this.self))
  }

  /** Installs a newer list (`resumed`: the one saved on disk, at the epoch this peer was already on). */
  #install(next: View, change?: Change, resumed = false): void {
    const before = this.#view
    if (!resumed && next.epoch <= (before?.epoch ?? this.#floorEpoch)) return
    const me = findGuest(next, this.self.id)
    if (me && (me.incarnation > this.self.incarnation || (me.incarnation === this.self.incarnation && me.address !== this.self.address))) {
      this.#superseded(`guest list ${next.epoch} holds a newer start of this identity at ${me.address}`)
      return
    }
    // A guest (resumed from disk) stays on a list naming its earlier start; a newcomer waits for its own entry.
    const onList = me !== undefined && (me.incarnation === this.self.incarnation || this.isGuest)
    if (!onList) {
      // A list without this start of us: removed (or left) if we were a guest; not yet admitted if joining.
      if (this.isGuest) this.#removed(next)
      return
    }
    this.#needsUpdate = me.incarnation !== this.self.incarnation || me.address !== this.self.address || me.apiPort !== this.self.apiPort
    // The first list with this start's own entry as it is: every guest must reach this epoch to know it.
    if (this.#needsUpdate) this.#entryEpoch = undefined
    else this.#entryEpoch ??= next.epoch
    this.#view = next
    this.#floorEpoch = next.epoch
    this.persist()
    this.#others = next.guests.filter((g) => g.id !== this.self.id)
    this.#byId = new Map(next.guests.map((g) => [g.id, g]))
    for (const id of this.#seenAt.keys()) if (!this.#byId.has(id)) this.#seenAt.delete(id)
    // An entry updated to a new start says where that start is.
    if (change) for (const u of change.update) this.#seenAt.delete(u.id)
    const diff = diffViews(before, next)
    this.env.log.info(
      { epoch: next.epoch, guests: next.guests.length, digest: viewDigest(next), added: diff.added.map((g) => g.id), removed: diff.removed.map((g) => g.id) },
      'guest list changed',
    )
    const reasons = change ? removalReasons(change) : new Map()
    if (before) {
      for (const _ of diff.added) this.event('guest_added')
      for (const g of diff.removed) this.event(isOwnLeave(reasons.get(g.id) ?? 'dead') ? 'guest_left' : 'guest_removed')
    }
    this.#detector.viewInstalled(diff)
    this.#coordinator.viewInstalled(next)
    if (this.#status === 'joining') {
      this.#joiner.stop()
      this.#setStatus('guest')
      this.event('admitted')
      this.#sayHello()
    }
    this.env.output({ kind: 'view', change: { before, after: next, added: diff.added, removed: diff.removed, reasons } })
  }

  /** A list without this peer arrived: it left, or was voted out (and joins again, keeping its identity). */
  #removed(next: View): void {
    if (this.#status === 'leaving') {
      this.#leaveParty('left', next.epoch)
      return
    }
    this.env.log.warn({ epoch: next.epoch }, 'this peer was removed from the party; rejoining')
    this.event('removed_self')
    this.event('rejoining')
    const lastKnown = [...new Set([...(this.#view?.guests ?? []), ...next.guests].map((g) => this.addressOf(g)))]
    this.#leaveParty('joining', next.epoch)
    this.#joiner.start(true, lastKnown)
  }

  #leaveParty(status: MembershipStatus, epoch = this.#view?.epoch ?? 0): void {
    const before = this.#view
    this.#view = undefined
    this.#others = []
    this.#byId = new Map()
    this.#seenAt.clear()
    this.#floorEpoch = Math.max(this.#floorEpoch, epoch)
    this.#detector.reset()
    this.#coordinator.reset()
    this.#viewSync.reset()
    this.requests.cancelAll()
    this.#needsUpdate = false
    this.#entryEpoch = undefined
    this.persist()
    this.#setStatus(status)
    if (before) this.env.output({ kind: 'view', change: { before, after: { epoch, guests: [] }, added: [], removed: before.guests, reasons: new Map() } })
  }

  #superseded(message: string): void {
    this.env.log.error({ id: this.self.id, incarnation: this.self.incarnation, reason: message }, 'another start of this identity took its place; stopping')
    this.event('superseded')
    const before = this.#view
    this.#view = undefined
    this.#others = []
    this.#byId = new Map()
    this.requests.cancelAll()
    this.#joiner.stop()
    this.#setStatus('superseded')
    if (before)
      this.env.output({ kind: 'view', change: { before, after: { epoch: before.epoch, guests: [] }, added: [], removed: before.guests, reasons: new Map() } })
  }

  /** Says hello to every guest: they learn this peer is live, and the metrics count it. */
  #sayHello(): void {
    const view = this.#view
    if (!view) return
    for (const g of this.#others) {
      this.requests.send(
        this.addressOf(g),
        (rid) => ({ type: 'hello', rid, from: this.self.id, epoch: view.epoch }),
        { timeoutMs: 1000, resendMs: 300 },
        this.#now,
        () => {},
      )
    }
  }

  #setStatus(status: MembershipStatus): void {
    if (this.#status === status) return
    this.#status = status
    this.env.output({ kind: 'status', status })
  }
}
