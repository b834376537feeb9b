import { TICK_MS } from '../../src/peer/membership/constants.ts'
import {
  type CoreLog,
  type CoreOutput,
  isQuorum,
  MembershipCore,
  type MembershipStatus,
  type PersistedMembership,
  viewDigest,
} from '../../src/peer/membership/index.ts'
import { type GuestId, type LeaveReason, type Message, parseMessage, type RemovalReason, type View } from '../../src/peer/protocol/index.ts'
import { defaultMembershipTimings, type MembershipTimings } from '../../src/shared/config.ts'

/**
 * Many real membership cores on one virtual clock, with a network that
 * loses, delays, reorders and duplicates datagrams, and peers that crash,
 * pause, restart (same identity, maybe a new address), starve for CPU and
 * get cut off by partitions. Everything random comes from one seed, so a
 * failing run replays exactly. After every step the invariants are checked:
 *
 *  - agreement: no two guests install different guest lists at one epoch;
 *  - quorum: every list was accepted by a quorum of the list before it;
 *  - no peer that never suffered a fault is removed.
 *
 * Convergence (every running peer on one list of exactly the running
 * peers) is checked by the scenarios once faults stop.
 */

/** mulberry32: small, fast, and the same everywhere. */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export class InvariantViolation extends Error {}

type Event =
  | { at: number; seq: number; kind: 'deliver'; to: number; life: number; from: string; msg: Message }
  | { at: number; seq: number; kind: 'tick'; peer: number; life: number }
  | { at: number; seq: number; kind: 'resolved'; peer: number; life: number; doors: string[] }
  | { at: number; seq: number; kind: 'call'; fn: () => void }

/** A binary min-heap of events by (at, seq): seq keeps equal times in the order they were scheduled. */
class Queue {
  readonly #items: Event[] = []
  get size(): number {
    return this.#items.length
  }
  push(e: Event): void {
    const a = this.#items
    a.push(e)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!before(a[i] as Event, a[p] as Event)) break
      ;[a[i], a[p]] = [a[p] as Event, a[i] as Event]
      i = p
    }
  }
  peek(): Event | undefined {
    return this.#items[0]
  }
  pop(): Event | undefined {
    const a = this.#items
    const top = a[0]
    const last = a.pop()
    if (a.length > 0 && last) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < a.length && before(a[l] as Event, a[m] as Event)) m = l
        if (r < a.length && before(a[r] as Event, a[m] as Event)) m = r
        if (m === i) break
        ;[a[i], a[m]] = [a[m] as Event, a[i] as Event]
        i = m
      }
    }
    return top
  }
}
const before = (x: Event, y: Event): boolean => x.at < y.at || (x.at === y.at && x.seq < y.seq)

export interface SimPeer {
  index: number
  id: GuestId
  incarnation: number
  address: string
  core: MembershipCore | undefined
  state: 'running' | 'paused' | 'crashed'
  /** Bumped on every crash and restart: events for an earlier life are dropped. */
  life: number
  /** Datagrams that arrived while paused (the socket buffer), handled on resume. */
  inbox: { from: string; msg: Message }[]
  /** CPU starvation: ticks and message handling are late by up to this much. */
  starveMs: number
  /** Ever crashed, paused, starved, cut off or restarted: exempt from "never removed". */
  faulted: boolean
  join: () => string[]
  /** Its data dir's membership state: it survives crashes. */
  disk: PersistedMembership | undefined
  sent: number
  received: number
}

export interface NetworkModel {
  /** One-way latency, uniform in [min, max] ms. */
  minLatencyMs: number
  maxLatencyMs: number
  loss: number
  duplicate: number
}

export interface SimOptions {
  seed: number
  timings?: Partial<MembershipTimings>
  network?: Partial<NetworkModel>
  /** Serialize and schema-check every datagram (slower; proves the cores only send valid messages). */
  validate?: boolean
  /** Keep the last this many trace lines for a failure report. */
  traceLines?: number
  /** Put the cores' own log lines (info and up) into the trace too. */
  traceLogs?: boolean
}

const INBOX_LIMIT = 2000
const quiet: CoreLog = { debug() {}, info() {}, warn() {}, error() {} }

export class Simulator {
  readonly random: () => number
  readonly timings: MembershipTimings
  readonly net: NetworkModel
  readonly peers: SimPeer[] = []
  now = 0
  #seq = 0
  readonly #queue = new Queue()
  readonly #byAddress = new Map<string, SimPeer>()
  /** Partition groups: peers in different groups cannot reach each other. Empty: no partition. */
  #group = new Map<number, number>()
  readonly #validate: boolean
  /** epoch → the one list installed at it (agreement). */
  readonly installed = new Map<number, { digest: string; view: View }>()
  /** baseEpoch → digest of the next list → guests that accepted it (quorum). */
  readonly #accepted = new Map<number, Map<string, Set<GuestId>>>()
  readonly #trace: string[] = []
  readonly #traceLines: number
  readonly #traceLogs: boolean
  /** Membership events counted over all peers. */
  readonly events = new Map<string, number>()
  /** Why each guest was last taken off a list, as the lists installed say. */
  readonly removedFor = new Map<GuestId, RemovalReason>()
  datagrams = 0
  /** Datagrams sent since the last resetCounters(), by message type. */
  readonly byType = new Map<string, number>()

  constructor(options: SimOptions) {
    this.random = rng(options.seed)
    this.timings = { ...defaultMembershipTimings(), ...options.timings }
    this.net = { minLatencyMs: 0.2, maxLatencyMs: 2, loss: 0, duplicate: 0, ...options.network }
    this.#validate = options.validate ?? false
    this.#traceLines = options.traceLines ?? 60
    this.#traceLogs = options.traceLogs ?? process.env.HOUSEPARTY_SIM_LOGS === '1'
  }

  // --- peers --------------------------------------------------------------------------

  /**
   * Adds a peer and starts it at `at`; `join` gives its doors (a function, so
   * it can be "every pod of the Service"). `address` reuses one (a pod that
   * came back with a new, empty volume: a new identity at the old name).
   */
  addPeer(join: () => string[], at = this.now, address?: string): SimPeer {
    const index = this.peers.length
    const peer: SimPeer = {
      index,
      id: (0x1000 + index * 0x9e3779b1).toString(16).padStart(16, '0').slice(-16),
      incarnation: 0,
      address: address ?? `10.0.${Math.floor(index / 250)}.${(index % 250) + 1}:7400`,
      core: undefined,
      state: 'crashed',
      life: 0,
      inbox: [],
      starveMs: 0,
      faulted: false,
      join,
      disk: undefined,
      sent: 0,
      received: 0,
    }
    this.peers.push(peer)
    this.at(at, () => this.#boot(peer))
    return peer
  }

  /** The addresses of every peer not crashed: what a headless Service with publishNotReadyAddresses resolves to. */
  service(): string[] {
    return this.peers.filter((p) => p.state !== 'crashed').map((p) => p.address)
  }

  crash(peer: SimPeer): void {
    this.trace(`crash ${peer.index}`)
    peer.faulted = true
    peer.state = 'crashed'
    peer.core = undefined
    peer.life++
    peer.inbox = []
    this.#byAddress.delete(peer.address)
  }

  /** Starts a crashed peer again on its old data: same identity, next incarnation, maybe a new address. */
  restart(peer: SimPeer, newAddress = false): void {
    if (peer.state !== 'crashed') this.crash(peer)
    if (newAddress) peer.address = `10.${1 + (peer.life % 200)}.${Math.floor(peer.index / 250)}.${(peer.index % 250) + 1}:7400`
    this.trace(`restart ${peer.index}${newAddress ? ` at ${peer.address}` : ''}`)
    this.#boot(peer)
  }

  pause(peer: SimPeer): void {
    if (peer.state !== 'running') return
    this.trace(`pause ${peer.index}`)
    peer.faulted = true
    peer.state = 'paused'
  }

  resume(peer: SimPeer): void {
    if (peer.state !== 'paused') return
    this.trace(`resume ${peer.index}`)
    peer.state = 'running'
    // After SIGCONT the overdue timer runs first, then the socket buffer is read.
    this.#tick(peer)
    const inbox = peer.inbox
    peer.inbox = []
    for (const { from, msg } of inbox) this.#handle(peer, from, msg)
  }

  starve(peer: SimPeer, ms: number): void {
    this.trace(`starve ${peer.index} ${ms}ms`)
    if (ms > 0) peer.faulted = true
    peer.starveMs = ms
  }

  /** Cuts the party into groups (lists of peer indexes); peers left out form one more group. */
  partition(groups: number[][]): void {
    this.trace(`partition ${groups.map((g) => g.join(',')).join(' | ')}`)
    this.#group = new Map()
    groups.forEach((g, i) => {
      for (const p of g) this.#group.set(p, i + 1)
    })
    // Everyone is cut off from someone: no side is "never faulted".
    for (const peer of this.peers) peer.faulted = true
  }

  heal(): void {
    this.trace('heal')
    this.#group = new Map()
  }

  leave(peer: SimPeer, reason: LeaveReason = 'leave'): void {
    this.trace(`leave ${peer.index} (${reason})`)
    peer.faulted = true
    peer.core?.leave(this.now, reason)
  }

  #boot(peer: SimPeer): void {
    peer.life++
    peer.incarnation++
    peer.state = 'running'
    peer.inbox = []
    this.#byAddress.set(peer.address, peer)
    const life = peer.life
    const core = new MembershipCore(
      {
        self: { id: peer.id, incarnation: peer.incarnation, address: peer.address, apiPort: 7480 },
        join: peer.join(),
        foundIfAlone: false,
        timings: this.timings,
        restored: peer.disk && structuredClone(peer.disk),
      },
      {
        send: (to, msg) => this.#send(peer, to, msg),
        random: this.random,
        resolveDoors: () => this.#schedule({ at: this.now + 1, seq: 0, kind: 'resolved', peer: peer.index, life, doors: peer.join() }),
        heldBytes: () => 0,
        // The core never changes a saved list or ballot in place (it makes new ones), so keeping the reference is a snapshot.
        persist: (state) => {
          if (peer.life === life) peer.disk = state
        },
        output: (out) => this.#output(peer, out),
        log: this.#traceLogs ? this.#logFor(peer) : quiet,
      },
    )
    peer.core = core
    core.start(this.now)
    this.#schedule({ at: this.now + TICK_MS, seq: 0, kind: 'tick', peer: peer.index, life })
  }

  // --- time ---------------------------------------------------------------------------

  at(time: number, fn: () => void): void {
    this.#schedule({ at: Math.max(time, this.now), seq: 0, kind: 'call', fn })
  }

  /** Runs events up to `time` (virtual ms). */
  runUntil(time: number): void {
    for (let e = this.#queue.peek(); e && e.at <= time; e = this.#queue.peek()) {
      this.#queue.pop()
      this.now = e.at
      this.#step(e)
    }
    this.now = Math.max(this.now, time)
  }

  runFor(ms: number): void {
    this.runUntil(this.now + ms)
  }

  /** Runs until `done()` holds (checked every `everyMs`), or throws after `withinMs`. Returns how long it took. */
  runUntilTrue(what: string, done: () => boolean, withinMs: number, everyMs = 50): number {
    const start = this.now
    while (!done()) {
      if (this.now - start > withinMs) this.#fail(`${what}: not within ${withinMs} ms of virtual time`)
      this.runFor(everyMs)
    }
    return this.now - start
  }

  #schedule(e: Event): void {
    e.seq = this.#seq++
    this.#queue.push(e)
  }

  #step(e: Event): void {
    switch (e.kind) {
      case 'call':
        return e.fn()
      case 'tick': {
        const peer = this.peers[e.peer] as SimPeer
        if (peer.life !== e.life || peer.state === 'crashed') return
        if (peer.state === 'running') this.#tick(peer)
        // A paused peer's timer fires on resume; a starved one's fires late.
        const late = peer.starveMs > 0 ? this.random() * peer.starveMs : 0
        this.#schedule({ at: this.now + TICK_MS + late, seq: 0, kind: 'tick', peer: peer.index, life: e.life })
        return
      }
      case 'resolved': {
        const peer = this.peers[e.peer] as SimPeer
        if (peer.life === e.life && peer.state !== 'crashed') peer.core?.doorsResolved(e.doors, this.now)
        return
      }
      case 'deliver': {
        const peer = this.peers[e.to] as SimPeer
        if (peer.life !== e.life || peer.state === 'crashed') return
        if (peer.state === 'paused') {
          if (peer.inbox.length < INBOX_LIMIT) peer.inbox.push({ from: e.from, msg: e.msg })
          return
        }
        this.#handle(peer, e.from, e.msg)
        return
      }
    }
  }

  #tick(peer: SimPeer): void {
    peer.core?.tick(this.now)
  }

  #handle(peer: SimPeer, from: string, msg: Message): void {
    peer.received++
    peer.core?.receive(from, msg, this.now)
  }

  #send(sender: SimPeer, to: string, msg: Message): void {
    if (sender.state !== 'running') return
    sender.sent++
    this.datagrams++
    this.byType.set(msg.type, (this.byType.get(msg.type) ?? 0) + 1)
    let payload = msg
    if (this.#validate) {
      const parsed = parseMessage(JSON.parse(JSON.stringify(msg)))
      if (!parsed) throw new InvariantViolation(`peer ${sender.index} sent an invalid ${msg.type}: ${JSON.stringify(msg).slice(0, 300)}`)
      payload = parsed
    }
    const target = this.#byAddress.get(to)
    if (!target) return
    const a = this.#group.get(sender.index) ?? 0
    const b = this.#group.get(target.index) ?? 0
    if (a !== b) return
    const copies = this.random() < this.net.duplicate ? 2 : 1
    for (let c = 0; c < copies; c++) {
      if (this.random() < this.net.loss) continue
      let delay = this.net.minLatencyMs + this.random() * (this.net.maxLatencyMs - this.net.minLatencyMs)
      if (target.starveMs > 0) delay += this.random() * target.starveMs
      this.#schedule({ at: this.now + delay, seq: 0, kind: 'deliver', to: target.index, life: target.life, from: sender.address, msg: payload })
    }
  }

  // --- invariants ---------------------------------------------------------------------

  #output(peer: SimPeer, out: CoreOutput): void {
    switch (out.kind) {
      case 'event':
        this.events.set(out.event, (this.events.get(out.event) ?? 0) + 1)
        return
      case 'accepted': {
        const byDigest = this.#accepted.get(out.baseEpoch) ?? new Map<string, Set<GuestId>>()
        this.#accepted.set(out.baseEpoch, byDigest)
        const set = byDigest.get(out.digest) ?? new Set()
        byDigest.set(out.digest, set)
        set.add(peer.id)
        return
      }
      case 'view': {
        const { before, after } = out.change
        for (const [id, reason] of out.change.reasons) this.removedFor.set(id, reason)
        if (after.guests.length === 0) {
          this.trace(`${peer.index} off the list at ${after.epoch}`)
          return
        }
        const digest = viewDigest(after)
        const known = this.installed.get(after.epoch)
        if (known && known.digest !== digest) {
          this.#fail(`agreement: peer ${peer.index} installed epoch ${after.epoch} as ${digest}, another as ${known.digest}`)
        }
        if (!known) {
          this.installed.set(after.epoch, { digest, view: after })
          this.trace(`epoch ${after.epoch}: ${after.guests.map((g) => this.#name(g.id, g.incarnation)).join(' ')} (by ${peer.index})`)
          const previous = this.installed.get(after.epoch - 1)
          if (after.epoch > 1) {
            if (!previous) this.#fail(`quorum: epoch ${after.epoch} installed with no list known at ${after.epoch - 1}`)
            else {
              const voters = this.#accepted.get(after.epoch - 1)?.get(digest) ?? new Set()
              if (!isQuorum(previous.view, voters))
                this.#fail(`quorum: epoch ${after.epoch} was accepted by ${voters.size} of ${previous.view.guests.length} guests`)
            }
          }
          for (const g of previous?.view.guests ?? before?.guests ?? []) {
            if (after.guests.some((x) => x.id === g.id)) continue
            const p = this.peers.find((x) => x.id === g.id)
            if (p && !p.faulted && p.state === 'running' && p.incarnation === g.incarnation) {
              this.#fail(`reachable guest removed: peer ${p.index} (never faulted) left out of epoch ${after.epoch}`)
            }
          }
        }
        return
      }
      case 'status':
        this.trace(`${peer.index} ${out.status}`)
        return
      default:
        return
    }
  }

  #logFor(peer: SimPeer): CoreLog {
    const line =
      (level: string) =>
      (fields: object, msg: string): void =>
        this.trace(`${peer.index}.${peer.incarnation} ${level} ${msg} ${JSON.stringify(fields)}`)
    return { debug() {}, info: line('info'), warn: line('warn'), error: line('ERROR') }
  }

  #name(id: GuestId, incarnation: number): string {
    const p = this.peers.find((x) => x.id === id)
    return `${p?.index ?? id}.${incarnation}`
  }

  trace(line: string): void {
    this.#trace.push(`${(this.now / 1000).toFixed(3)}s ${line}`)
    if (this.#trace.length > this.#traceLines) this.#trace.shift()
  }

  get traceTail(): string {
    return this.#trace.join('\n')
  }

  #fail(message: string): never {
    this.trace(`VIOLATION ${message}`)
    const err = new InvariantViolation(message)
    this.failure = err
    throw err
  }

  /** The violation this run stopped on, if any (with the trace at that moment). */
  failure: InvariantViolation | undefined

  /** A one-screen summary of where each peer stands, for a failure report. */
  describe(): string {
    return this.peers
      .map((p) => {
        const v = p.core?.view
        return `peer ${p.index}.${p.incarnation} ${p.state} ${p.core?.status ?? '-'} epoch ${v?.epoch ?? '-'} [${v?.guests.map((g) => this.#name(g.id, g.incarnation)).join(' ') ?? ''}]`
      })
      .join('\n')
  }

  /** Zeroes every peer's datagram counters (to measure a steady state). */
  resetCounters(): void {
    for (const p of this.peers) {
      p.sent = 0
      p.received = 0
    }
    this.datagrams = 0
    this.byType.clear()
  }

  // --- convergence --------------------------------------------------------------------

  statusOf(peer: SimPeer): MembershipStatus | 'crashed' {
    return peer.core?.status ?? 'crashed'
  }

  /**
   * Every peer of `among` runs and is a guest, all at one epoch, and the list
   * of that epoch holds exactly them (their current starts). One epoch is one
   * list: the agreement check makes sure of that as lists are installed.
   */
  converged(among: readonly SimPeer[] = this.peers): boolean {
    if (among.length === 0 || among.some((p) => p.state !== 'running' || p.core?.status !== 'guest')) return false
    const epoch = among[0]?.core?.view?.epoch
    if (epoch === undefined || among.some((p) => p.core?.view?.epoch !== epoch)) return false
    const list = this.installed.get(epoch)?.view
    if (!list || list.guests.length !== among.length) return false
    const entries = new Map(list.guests.map((g) => [g.id, g]))
    return among.every((p) => {
      const g = entries.get(p.id)
      return g !== undefined && g.incarnation === p.incarnation && g.address === p.address
    })
  }
}
