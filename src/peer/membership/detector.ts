import type { Clock } from '../../shared/clock.ts'
import type { MembershipTimings } from '../../shared/config.ts'
import type { Logger } from '../../shared/logger.ts'
import type { Messenger } from '../net/index.ts'
import type { GuestId, MessageOf, Reply } from '../protocol/index.ts'
import type { Membership } from './membership.ts'

export type DetectorEvent = 'suspected' | 'vote_dead' | 'vote_alive' | 'pause_detected'

export interface DetectorOptions {
  membership: Membership
  messenger: Messenger
  clock: Clock
  timings: MembershipTimings
  logger: Logger
  onEvent?: (event: DetectorEvent) => void
  /** Time from the last word heard from a guest to its removal being requested. */
  onDeathDeclared?: (id: GuestId, silentForMs: number) => void
  /** Bytes this peer stores, sent in every pong (placement balances on it). */
  heldBytes?: () => number
}

/**
 * Failure detection by ping-voting. Every guest pings every other on a
 * schedule. The first to hear nothing from a guest for `suspectAfterMs` asks
 * every guest to ping the suspect; the suspect is declared dead only if no
 * voter reaches it. One voter that can still reach it saves it: a peer that is
 * merely slow to one other guest is never removed.
 */
export class FailureDetector {
  readonly #o: DetectorOptions
  readonly #log: Logger
  /** Monotonic time we last heard anything from each guest. */
  readonly #lastHeard = new Map<GuestId, number>()
  readonly #held = new Map<GuestId, number>()
  /** Suspects under a vote (ours or someone else's), and until when. */
  readonly #voting = new Map<GuestId, number>()
  #timer: NodeJS.Timeout | undefined
  #lastTick = 0

  constructor(options: DetectorOptions) {
    this.#o = options
    this.#log = options.logger
    options.messenger.on('ping', (msg, from) => this.#onPing(msg, from))
    options.messenger.on('pingReq', (msg, from) => this.#onPingReq(msg, from))
    options.membership.onViewChange(({ added, removed }) => {
      const now = this.#o.clock.monotonic()
      // A newcomer gets a full grace period before it can be suspected.
      for (const g of added) this.#lastHeard.set(g.id, now)
      for (const g of removed) {
        this.#lastHeard.delete(g.id)
        this.#voting.delete(g.id)
      }
    })
  }

  /** The bytes each guest last said it stores (from pongs); this peer's own from the probe. */
  heldBytes(id: GuestId): number | undefined {
    if (id === this.#o.membership.id) return this.#o.heldBytes?.()
    return this.#held.get(id)
  }

  start(): void {
    this.#lastTick = this.#o.clock.monotonic()
    this.#timer = setInterval(() => this.#tick(), this.#o.timings.pingIntervalMs)
    this.#timer.unref?.()
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** Any authenticated word from a guest proves it alive. */
  heard(id: GuestId): void {
    this.#lastHeard.set(id, this.#o.clock.monotonic())
  }

  #tick(): void {
    const m = this.#o.membership
    const now = this.#o.clock.monotonic()
    const t = this.#o.timings
    const gap = now - this.#lastTick
    this.#lastTick = now
    if (gap > t.suspectAfterMs / 2) {
      // We were not running (SIGSTOP, a long GC, an overloaded host): our own
      // silence is not theirs. Restart every clock instead of suspecting all.
      this.#o.onEvent?.('pause_detected')
      this.#log.warn({ pausedMs: Math.round(gap) }, 'event loop was paused; resetting failure detector')
      for (const id of this.#lastHeard.keys()) this.#lastHeard.set(id, now)
    }
    const self = m.id
    const view = m.view
    if (!view || !self || !m.isGuest) {
      // Not a guest (joining, or removed): ping known doors so we learn whether we were dropped.
      return
    }
    for (const g of m.others()) {
      if (!this.#lastHeard.has(g.id)) this.#lastHeard.set(g.id, now)
      this.#ping(g.address, self, view.epoch)
      const silentFor = now - (this.#lastHeard.get(g.id) ?? now)
      const votingUntil = this.#voting.get(g.id)
      if (votingUntil !== undefined && votingUntil > now) continue
      if (silentFor > t.suspectAfterMs) void this.#vote(g.id, g.address, self, silentFor)
    }
  }

  #ping(address: string, self: GuestId, epoch: number): void {
    const m = this.#o.membership
    this.#o.messenger
      .request<Reply>(address, (rid) => ({ type: 'ping', rid, from: self, epoch }), { timeoutMs: this.#o.timings.suspectAfterMs })
      .then((reply) => {
        if (reply.type === 'pong') {
          this.heard(reply.from)
          if (reply.held !== undefined) this.#held.set(reply.from, reply.held)
          m.noticeEpoch(reply.epoch, address)
        } else if (reply.type === 'notGuest') {
          m.noticeEpoch(reply.epoch, address, true)
        }
      })
      .catch(() => {})
  }

  /** Pings target directly a few times within the vote window; true if it answered. */
  async #reach(address: string, self: GuestId): Promise<boolean> {
    const window = this.#o.timings.voteTimeoutMs
    try {
      await this.#o.messenger.request(address, (rid) => ({ type: 'ping', rid, from: self, epoch: this.#o.membership.view?.epoch ?? 0 }), {
        timeoutMs: window,
        resendMs: Math.max(20, Math.floor(window / 3)),
      })
      return true
    } catch {
      return false
    }
  }

  async #vote(target: GuestId, address: string, self: GuestId, silentFor: number): Promise<void> {
    const t = this.#o.timings
    const now = this.#o.clock.monotonic()
    this.#voting.set(target, now + t.voteTimeoutMs * 2 + t.proposalTimeoutMs)
    this.#o.onEvent?.('suspected')
    const voters = this.#o.membership.others().filter((g) => g.id !== target)
    this.#log.info({ suspect: target, silentForMs: Math.round(silentFor), voters: voters.length }, 'guest suspected; asking every guest to ping it')
    const ballots = voters.map(
      (v) =>
        this.#o.messenger
          .request<Reply>(v.address, (rid) => ({ type: 'pingReq', rid, from: self, target }), {
            timeoutMs: t.voteTimeoutMs + 150,
            resendMs: Math.max(20, Math.floor(t.voteTimeoutMs / 3)),
          })
          .then((r) => r.type === 'pingReqResult' && r.alive)
          .catch(() => false), // a voter that does not answer cannot vouch for the suspect
    )
    const votes = await Promise.all([this.#reach(address, self), ...ballots])
    const alive = votes.filter(Boolean).length
    if (!this.#o.membership.isGuestId(target)) return
    if (alive > 0) {
      this.#o.onEvent?.('vote_alive')
      this.#log.info({ suspect: target, reachedBy: alive }, 'suspect is alive')
      this.heard(target)
      this.#voting.delete(target)
      return
    }
    this.#o.onEvent?.('vote_dead')
    const silent = this.#o.clock.monotonic() - (this.#lastHeard.get(target) ?? now)
    this.#log.warn({ suspect: target, voters: voters.length, silentForMs: Math.round(silent) }, 'no guest can reach the suspect; declaring it dead')
    this.#o.onDeathDeclared?.(target, silent)
    this.#o.membership.requestRemoval(target, 'dead')
  }

  #onPing(msg: MessageOf<'ping'>, from: string): void {
    const m = this.#o.membership
    const view = m.view
    if (!view || !m.id || !m.isGuest) {
      // Not (or no longer) a guest ourselves; tell them our epoch and learn theirs.
      this.#o.messenger.send(from, { type: 'notGuest', re: msg.rid, epoch: view?.epoch ?? 0 })
      m.noticeEpoch(msg.epoch, from)
      return
    }
    if (!m.isGuestId(msg.from)) {
      this.#o.messenger.send(from, { type: 'notGuest', re: msg.rid, epoch: view.epoch })
      m.noticeEpoch(msg.epoch, from)
      return
    }
    this.heard(msg.from)
    this.#o.messenger.send(from, { type: 'pong', re: msg.rid, from: m.id, epoch: view.epoch, held: this.#o.heldBytes?.() ?? 0 })
    m.noticeEpoch(msg.epoch, from)
  }

  #onPingReq(msg: MessageOf<'pingReq'>, from: string): void {
    const m = this.#o.membership
    const self = m.id
    if (!self || !m.isGuest) return
    const target = m.view?.guests.find((g) => g.id === msg.target)
    const now = this.#o.clock.monotonic()
    // Someone else is already voting on this suspect: do not start a second vote.
    this.#voting.set(msg.target, now + this.#o.timings.voteTimeoutMs * 2 + this.#o.timings.proposalTimeoutMs)
    const answer = (alive: boolean): void => this.#o.messenger.send(from, { type: 'pingReqResult', re: msg.rid, from: self, target: msg.target, alive })
    if (!target) return answer(false)
    void this.#reach(target.address, self).then((alive) => {
      if (alive) this.heard(msg.target)
      answer(alive)
    })
  }
}
