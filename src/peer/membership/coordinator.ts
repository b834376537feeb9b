import { backoffMs } from '../../shared/lifecycle.ts'
import {
  type Ballot,
  type Change,
  type Guest,
  type GuestId,
  isOwnLeave,
  type LeaveReason,
  MAX_GUESTS,
  MAX_NEWCOMERS_PER_CHANGE,
  MAX_REMOVALS_PER_CHANGE,
  type MessageOf,
  type Newcomer,
  type RemovalReason,
  type Reply,
  type View,
} from '../protocol/index.ts'
import type { Acceptor } from './acceptor.ts'
import { COMMIT_DELIVERY_MS, MAX_HOPS, QUEUED_JOIN_TTL_MS, RESEND_MS } from './constants.ts'
import type { Detector } from './detector.ts'
import type { Shared } from './state.ts'
import {
  applyChange,
  checkNewcomer,
  compareBallots,
  coordinatorOf,
  findGuest,
  isEmptyChange,
  isQuorum,
  reachableAt,
  staying,
  viewDigest,
  voters,
} from './view.ts'

interface QueuedJoin {
  newcomer: Newcomer
  /** It holds the membership state of its entry (a restart on its data dir): update the entry in place. */
  resumed: boolean
  /** Where to answer ('' for this peer's own update). */
  replyTo: string
  rid: number
  expiresAt: number
}

/** One attempt to decide the view after `base`. */
interface Round {
  base: View
  ballot: Ballot
  phase: 1 | 2
  /** What this coordinator wants (phase 1), then what it asks to accept (phase 2). */
  change: Change
  targets: Guest[]
  /** Phase 1: each target's promise or refusal ('silent' once it timed out). */
  answers: Map<GuestId, Reply | 'silent'>
  /** A change this peer accepted earlier for the same epoch, from its own promise. */
  ownAccepted: { ballot: Ballot; change: Change } | undefined
  /** Phase 2: who accepted. */
  acceptedBy: Set<GuestId>
  deadline: number
  rids: number[]
}

/**
 * Changes to the guest list. Joins and removals go to the coordinator: the
 * first guest, in admission order, that is neither voted dead nor leaving.
 * It batches them into one change and decides the next view with
 * single-decree Paxos over the current guests:
 *
 *  1. prepare: every guest that stays must promise (everyone approves a
 *     newcomer), and those promises must make a quorum of the current list;
 *     guests being removed are never asked, so the dead cannot block it.
 *  2. accept: once a quorum accepted, the change is chosen; commit tells
 *     everyone, the removed and the newcomers included.
 *
 * If a promise reports a change accepted earlier for this epoch, that change
 * is finished instead (it may already be chosen), needing only a quorum.
 * Coordinators that disagree (each thinks the other dead) cannot both
 * decide one epoch: their quorums share a guest, which promised one ballot.
 * A side that is not a quorum of the current list changes nothing.
 */
export class Coordinator {
  readonly #s: Shared
  readonly #acceptor: Acceptor
  readonly #detector: Detector
  readonly #install: (next: View, change: Change) => void
  readonly #joins = new Map<GuestId, QueuedJoin>()
  /** Guests that asked to leave (and why), until then. */
  readonly #leaving = new Map<GuestId, { until: number; reason: LeaveReason }>()
  #round: Round | undefined
  #retryAt = 0
  #attempt = 0
  #highestRound = 0
  #lastForwardAt = Number.NEGATIVE_INFINITY
  #lastNoQuorumLog = Number.NEGATIVE_INFINITY

  constructor(shared: Shared, acceptor: Acceptor, detector: Detector, install: (next: View, change: Change) => void) {
    this.#s = shared
    this.#acceptor = acceptor
    this.#detector = detector
    this.#install = install
  }

  /** Guests that will not coordinate: voted dead, or leaving. */
  excluded(): Set<GuestId> {
    const out = new Set(this.#detector.dead)
    for (const id of this.#leaving.keys()) out.add(id)
    return out
  }

  coordinator(): Guest | undefined {
    const view = this.#s.view
    return view && coordinatorOf(view, this.excluded())
  }

  #isCoordinator(): boolean {
    return this.#s.status === 'guest' && this.coordinator()?.id === this.#s.self.id
  }

  viewInstalled(view: View): void {
    if (this.#round && this.#round.base.epoch < view.epoch) this.#drop()
    for (const [id] of this.#leaving) if (!findGuest(view, id)) this.#leaving.delete(id)
    this.#retryAt = 0
  }

  reset(): void {
    this.#drop()
    this.#joins.clear()
    this.#leaving.clear()
  }

  /** This peer asks to leave: it stops coordinating and asks the next in line to remove it. */
  leave(reason: LeaveReason): void {
    this.#leaving.set(this.#s.self.id, { until: Number.POSITIVE_INFINITY, reason })
    this.#drop()
    this.#forward(true)
  }

  /** A vote found `id` dead: remove it, here if this peer coordinates, else through the coordinator. */
  removeDead(_id: GuestId): void {
    this.#forward(true)
  }

  /**
   * This guest restarted on its data dir and the list still names its
   * earlier start: ask for its entry to point at this start (and address).
   */
  requestUpdate(): void {
    const s = this.#s
    const coordinator = this.coordinator()
    if (!coordinator || s.status !== 'guest') return
    if (coordinator.id === s.self.id) {
      this.#joins.set(s.self.id, { newcomer: s.self, resumed: true, replyTo: '', rid: 0, expiresAt: s.now + QUEUED_JOIN_TTL_MS })
      return
    }
    // Also through one other guest, which relays it: the coordinator may itself be at an address this peer does not know yet.
    const others = s.others().filter((g) => g.id !== coordinator.id)
    const relay = others[Math.floor(s.env.random() * others.length)]
    for (const via of relay ? [coordinator, relay] : [coordinator]) {
      s.requests.send(
        s.addressOf(via),
        (rid) => ({ type: 'join', rid, guest: s.self, resumed: true, replyTo: s.self.address, hops: 0 }),
        { timeoutMs: s.timings.suspectAfterMs, resendMs: RESEND_MS },
        s.now,
        () => {},
      )
    }
  }

  tick(): void {
    const s = this.#s
    const now = s.now
    for (const [id, q] of this.#joins) if (q.expiresAt < now) this.#joins.delete(id)
    for (const [id, { until }] of this.#leaving) if (until < now) this.#leaving.delete(id)
    const round = this.#round
    if (round) {
      if (now >= round.deadline) {
        if (round.phase === 1) this.#afterPrepare(round)
        else this.#fail(round, 'not enough guests accepted in time', this.#silentIn(round))
      }
      return
    }
    if (this.#isCoordinator()) {
      if (now >= this.#retryAt) this.#startRound()
    } else this.#forward(false)
  }

  // --- requests from other guests and newcomers -----------------------------------

  onJoin(msg: MessageOf<'join'>): void {
    const s = this.#s
    const view = s.view
    if (!view || s.status !== 'guest') return
    const coordinator = this.coordinator()
    if (!coordinator) return
    if (coordinator.id !== s.self.id) {
      if (msg.hops < MAX_HOPS) s.env.send(s.addressOf(coordinator), { ...msg, hops: msg.hops + 1 })
      return
    }
    const check = checkNewcomer(view, msg.guest, msg.resumed)
    if (check.verdict === 'present') {
      s.env.send(msg.replyTo, { type: 'joinQueued', re: msg.rid, coordinator: s.self.id, admitted: true })
      return
    }
    if (check.verdict === 'superseded') {
      s.env.send(msg.replyTo, {
        type: 'joinRejected',
        re: msg.rid,
        code: 'SUPERSEDED',
        message: `a newer start of guest ${msg.guest.id} is on the list (at ${check.holder.address}); is its data directory in use twice?`,
      })
      return
    }
    if (check.verdict === 'new' && view.guests.length + this.#joins.size >= MAX_GUESTS) {
      s.env.send(msg.replyTo, { type: 'joinRejected', re: msg.rid, code: 'PARTY_FULL', message: `a party holds at most ${MAX_GUESTS} guests` })
      return
    }
    this.#joins.set(msg.guest.id, { newcomer: msg.guest, resumed: msg.resumed, replyTo: msg.replyTo, rid: msg.rid, expiresAt: s.now + QUEUED_JOIN_TTL_MS })
    s.env.send(msg.replyTo, { type: 'joinQueued', re: msg.rid, coordinator: s.self.id, admitted: false })
  }

  onRemove(msg: MessageOf<'remove'>, from: string): void {
    const s = this.#s
    const view = s.view
    if (!view || (s.status !== 'guest' && s.status !== 'leaving')) return
    for (const t of msg.targets) {
      if (!findGuest(view, t.id) || t.id === s.self.id) continue
      if (isOwnLeave(t.reason)) {
        if (t.id === msg.from) this.#leaving.set(t.id, { until: s.now + QUEUED_JOIN_TTL_MS, reason: t.reason })
      } else if (this.#detector.heardWithin(t.id, s.timings.suspectAfterMs)) {
        s.env.log.info({ guest: t.id, by: msg.from }, 'asked to remove a guest this peer just heard from; it stays')
        s.event('removal_refuted')
      } else this.#detector.markDead(t.id)
    }
    const coordinator = this.coordinator()
    s.env.send(from, { type: 'removeQueued', re: msg.rid, coordinator: coordinator?.id ?? s.self.id })
    if (coordinator && coordinator.id !== s.self.id && msg.hops < MAX_HOPS) s.env.send(s.addressOf(coordinator), { ...msg, hops: msg.hops + 1 })
  }

  /** Tells the coordinator who this peer believes must go (at most every few resends). */
  #forward(now: boolean): void {
    const s = this.#s
    const view = s.view
    if (!view || (s.status !== 'guest' && s.status !== 'leaving')) return
    if (!now && s.now - this.#lastForwardAt < 3 * RESEND_MS) return
    const targets: { id: GuestId; reason: RemovalReason }[] = []
    for (const id of this.#detector.dead) if (findGuest(view, id)) targets.push({ id, reason: 'dead' })
    const own = this.#leaving.get(s.self.id)
    if (own && findGuest(view, s.self.id)) targets.push({ id: s.self.id, reason: own.reason })
    const coordinator = this.coordinator()
    if (targets.length === 0 || !coordinator || coordinator.id === s.self.id) return
    this.#lastForwardAt = s.now
    s.requests.send(
      s.addressOf(coordinator),
      (rid) => ({ type: 'remove', rid, from: s.self.id, targets: targets.slice(0, MAX_REMOVALS_PER_CHANGE), hops: 0 }),
      { timeoutMs: s.timings.suspectAfterMs / 2 + 2 * s.stretch(coordinator.id), resendMs: RESEND_MS },
      s.now,
      () => {},
      // "The first peer to notice a timeout asks every peer to ping the suspect."
      () => this.#detector.suspect(coordinator.id),
    )
  }

  // --- deciding the next view -----------------------------------------------------

  /** The change this coordinator would propose now: the dead and leaving out, restarted guests updated, queued newcomers in. */
  #plan(view: View): Change {
    const s = this.#s
    const remove = new Map<GuestId, RemovalReason>()
    for (const id of this.#detector.dead) if (findGuest(view, id) && id !== s.self.id) remove.set(id, 'dead')
    for (const [id, { reason }] of this.#leaving) if (findGuest(view, id) && id !== s.self.id) remove.set(id, reason)
    const add: Newcomer[] = []
    const update: Newcomer[] = []
    for (const [id, q] of this.#joins) {
      if (add.length + update.length >= MAX_NEWCOMERS_PER_CHANGE) break
      const check = checkNewcomer(view, q.newcomer, q.resumed)
      const own = id === s.self.id
      if (check.verdict === 'present' || check.verdict === 'superseded' || (own && check.verdict !== 'updates') || remove.has(id)) {
        this.#joins.delete(id)
        continue
      }
      if (check.verdict === 'updates') update.push(q.newcomer)
      else {
        if (check.verdict === 'replaces') remove.set(id, 'replaced')
        add.push(q.newcomer)
      }
    }
    return { remove: [...remove].slice(0, MAX_REMOVALS_PER_CHANGE).map(([id, reason]) => ({ id, reason })), add, update }
  }

  #startRound(): void {
    const s = this.#s
    const view = s.view
    if (!view) return
    const change = this.#plan(view)
    if (isEmptyChange(change)) return
    const voting = voters(view, change)
    if (!isQuorum(view, voting)) {
      // The guests this peer believes alive are not a quorum: it may be the side cut off. Change nothing.
      this.#retryAt = s.now + s.timings.suspectAfterMs
      s.event('no_quorum')
      if (s.now - this.#lastNoQuorumLog > 10_000) {
        this.#lastNoQuorumLog = s.now
        s.env.log.warn({ epoch: view.epoch, guests: view.guests.length, reachable: voting.size }, 'not a quorum of the guest list is alive; changing nothing')
      }
      return
    }
    const ballot: Ballot = { round: Math.max(this.#highestRound, this.#acceptor.highestRound) + 1, by: s.self.id }
    this.#highestRound = ballot.round
    const own = this.#acceptor.promiseLocal(ballot)
    if (!own.ok) {
      this.#highestRound = Math.max(this.#highestRound, own.promised.round)
      this.#retryAt = s.now + this.#backoff()
      return
    }
    const round: Round = {
      base: view,
      ballot,
      phase: 1,
      change,
      targets: this.#reachable(view, change).filter((g) => voting.has(g.id) && g.id !== s.self.id),
      answers: new Map(),
      ownAccepted: own.accepted,
      acceptedBy: new Set(),
      deadline: s.now + this.#timeout(),
      rids: [],
    }
    this.#round = round
    for (const g of round.targets) {
      round.rids.push(
        s.requests.send(
          g.address,
          (rid) => ({ type: 'prepare', rid, from: s.self.id, baseEpoch: view.epoch, ballot, change }),
          { timeoutMs: this.#timeout(), resendMs: RESEND_MS },
          s.now,
          (reply) => this.#answered(round, g.id, reply),
          () => this.#answered(round, g.id, 'silent'),
        ),
      )
    }
    if (round.targets.length === 0) this.#afterPrepare(round)
  }

  #answered(round: Round, id: GuestId, reply: Reply | 'silent'): void {
    if (this.#round !== round || round.phase !== 1) return
    round.answers.set(id, reply)
    if (reply !== 'silent' && reply.type === 'nack') {
      if (reply.promised) this.#highestRound = Math.max(this.#highestRound, reply.promised.round)
      if (reply.code === 'NEWER_EPOCH') this.#s.noticeEpoch(reply.epoch, round.targets.find((g) => g.id === id)?.address ?? '')
    }
    if (round.answers.size === round.targets.length) this.#afterPrepare(round)
  }

  #afterPrepare(round: Round): void {
    const s = this.#s
    if (this.#round !== round) return
    const silent = round.targets.filter((g) => {
      const a = round.answers.get(g.id)
      return a === undefined || a === 'silent'
    })
    const refusals = [...round.answers.values()].flatMap((a) => (a !== 'silent' && a.type === 'nack' ? [a] : []))
    const promises = [...round.answers.values()].flatMap((a) =>
      a !== 'silent' && a.type === 'promise' && compareBallots(a.ballot, round.ballot) === 0 ? [a] : [],
    )
    if (refusals.length > 0) return this.#fail(round, `refused: ${refusals.map((r) => `${r.from}:${r.code}`).join(', ')}`, [])
    const promisers = new Set([s.self.id, ...promises.map((p) => p.from)])
    if (!isQuorum(round.base, promisers)) return this.#fail(round, 'no quorum promised', silent)
    // A change accepted earlier for this epoch may have been chosen: finish it, whatever this coordinator wanted.
    let earlier = round.ownAccepted
    for (const p of promises) if (p.accepted && (!earlier || compareBallots(p.accepted.ballot, earlier.ballot) > 0)) earlier = p.accepted
    let change = round.change
    if (earlier) change = earlier.change
    else {
      // Every guest that stays approves a change; a leaver that does not answer is simply not counted.
      const stay = staying(round.base, change)
      if (silent.some((g) => stay.has(g.id))) return this.#fail(round, 'not every staying guest answered', silent)
      const objected = new Set(promises.flatMap((p) => p.alive ?? []))
      if (objected.size > 0) {
        this.#detector.refute(objected)
        s.env.log.info({ guests: [...objected] }, 'guests heard from a moment ago stay on the list')
        return this.#fail(round, 'a removal was refuted', [], false)
      }
    }
    const digest = viewDigest(applyChange(round.base, change))
    if (!this.#acceptor.acceptLocal(round.ballot, change, digest)) return this.#fail(round, 'outbid', [])
    round.phase = 2
    round.change = change
    round.acceptedBy = new Set([s.self.id])
    round.deadline = s.now + this.#timeout()
    const voting = voters(round.base, change)
    const targets = this.#reachable(round.base, change).filter((g) => voting.has(g.id) && g.id !== s.self.id)
    for (const g of targets) {
      round.rids.push(
        s.requests.send(
          g.address,
          (rid) => ({ type: 'accept', rid, from: s.self.id, baseEpoch: round.base.epoch, ballot: round.ballot, change, digest }),
          { timeoutMs: this.#timeout(), resendMs: RESEND_MS },
          s.now,
          (reply) => this.#acceptAnswered(round, reply),
        ),
      )
    }
    this.#checkChosen(round)
  }

  #acceptAnswered(round: Round, reply: Reply): void {
    if (this.#round !== round || round.phase !== 2) return
    if (reply.type === 'accepted' && compareBallots(reply.ballot, round.ballot) === 0) {
      round.acceptedBy.add(reply.from)
      this.#checkChosen(round)
    } else if (reply.type === 'nack') {
      if (reply.promised) this.#highestRound = Math.max(this.#highestRound, reply.promised.round)
      this.#fail(round, `accept refused by ${reply.from}: ${reply.code}`, [])
    }
  }

  #checkChosen(round: Round): void {
    if (!isQuorum(round.base, round.acceptedBy)) return
    const s = this.#s
    const next = applyChange(round.base, round.change)
    const digest = viewDigest(next)
    this.#drop()
    this.#attempt = 0
    s.event('proposal_committed')
    const targets = [...this.#reachable(round.base, round.change).filter((g) => g.id !== s.self.id), ...round.change.add]
    for (const g of targets) {
      s.requests.send(
        g.address,
        (rid) => ({ type: 'commit', rid, from: s.self.id, baseEpoch: round.base.epoch, change: round.change, digest }),
        { timeoutMs: COMMIT_DELIVERY_MS, resendMs: RESEND_MS },
        s.now,
        () => {},
      )
    }
    for (const n of [...round.change.add, ...round.change.update]) if (this.#joins.get(n.id)?.newcomer.incarnation === n.incarnation) this.#joins.delete(n.id)
    this.#install(next, round.change)
  }

  /** The guests of `view` with the address to reach each at while `change` is decided. */
  #reachable(view: View, change: Change): Guest[] {
    const updated = new Set(change.update.map((u) => u.id))
    return reachableAt(view, change).map((g) => (updated.has(g.id) ? g : { ...g, address: this.#s.addressOf(g) }))
  }

  #fail(round: Round, reason: string, silent: readonly Guest[], backoff = true): void {
    const s = this.#s
    if (this.#round !== round) return
    this.#drop()
    this.#attempt++
    this.#retryAt = backoff ? s.now + this.#backoff() : s.now
    s.event('proposal_aborted')
    s.env.log.info({ epoch: round.base.epoch + 1, phase: round.phase, reason, attempt: this.#attempt }, 'view change aborted')
    for (const g of silent) this.#detector.suspect(g.id)
  }

  #silentIn(round: Round): Guest[] {
    return round.targets.filter((g) => !round.acceptedBy.has(g.id))
  }

  #drop(): void {
    const round = this.#round
    if (!round) return
    for (const rid of round.rids) this.#s.requests.cancel(rid)
    this.#round = undefined
  }

  #timeout(): number {
    return this.#s.timings.proposalTimeoutMs + 2 * this.#s.stretch()
  }

  #backoff(): number {
    return backoffMs(this.#attempt, 40, 1000, this.#s.env.random)
  }
}
