import type { Ballot, Change, GuestId, MessageOf } from '../protocol/index.ts'
import type { AcceptorState, Shared } from './state.ts'
import { applyChange, compareBallots, viewDigest } from './view.ts'

interface AcceptedChange {
  ballot: Ballot
  change: Change
  digest: string
}

export type LocalPromise = { ok: true; accepted: AcceptedChange | undefined } | { ok: false; promised: Ballot }

/**
 * One guest's vote on the view that follows its current one: the acceptor
 * of single-decree Paxos, one instance per epoch. It promises to ignore
 * ballots below the highest it has seen, and reports the change it last
 * accepted, so a new coordinator finishes a change that may already have
 * been chosen instead of deciding a different one. Its state is dropped
 * when the next view is installed: each epoch is decided once.
 *
 * Every promise and acceptance is saved (with the list) before it is
 * answered: a guest restarted on its data dir resumes with its votes, so it
 * can never take back a promise it gave before the restart.
 */
export class Acceptor {
  readonly #s: Shared
  /** Did this guest hear from `id` a moment ago? Then it objects to removing it. */
  readonly #heardWithin: (id: GuestId, ms: number) => boolean
  #baseEpoch = -1
  #promised: Ballot | undefined
  #accepted: AcceptedChange | undefined
  #highestRound = 0

  constructor(shared: Shared, heardWithin: (id: GuestId, ms: number) => boolean) {
    this.#s = shared
    this.#heardWithin = heardWithin
  }

  /** The highest round this guest has seen in any ballot: a proposer starts above it. */
  get highestRound(): number {
    return this.#highestRound
  }

  /** What is saved to disk. */
  state(): AcceptorState | undefined {
    if (this.#baseEpoch < 0) return undefined
    return { baseEpoch: this.#baseEpoch, promised: this.#promised, accepted: this.#accepted }
  }

  /** Takes back the votes saved by an earlier start (only those on the list it resumes with). */
  restore(state: AcceptorState | undefined, epoch: number): void {
    if (!state || state.baseEpoch !== epoch) return
    this.#baseEpoch = state.baseEpoch
    this.#promised = state.promised
    this.#accepted = state.accepted
    if (state.promised) this.#see(state.promised)
  }

  /** The proposer's own promise, given to itself. */
  promiseLocal(ballot: Ballot): LocalPromise {
    this.#sync()
    this.#see(ballot)
    if (this.#promised && compareBallots(ballot, this.#promised) < 0) return { ok: false, promised: this.#promised }
    this.#promise(ballot)
    return { ok: true, accepted: this.#accepted }
  }

  /** The proposer's own acceptance. */
  acceptLocal(ballot: Ballot, change: Change, digest: string): boolean {
    this.#sync()
    if (this.#promised && compareBallots(ballot, this.#promised) < 0) return false
    this.#promised = ballot
    this.#accepted = { ballot, change, digest }
    this.#s.persist()
    this.#s.env.output({ kind: 'accepted', baseEpoch: this.#baseEpoch, digest })
    return true
  }

  onPrepare(msg: MessageOf<'prepare'>, from: string): void {
    const refusal = this.#check(msg, from)
    if (refusal) return
    this.#promise(msg.ballot)
    // Removals this guest can contradict: it heard from them within a silence period.
    const alive = msg.change.remove.filter((r) => r.reason === 'dead' && this.#heardWithin(r.id, this.#s.timings.suspectAfterMs)).map((r) => r.id)
    this.#s.env.send(from, {
      type: 'promise',
      re: msg.rid,
      from: this.#s.self.id,
      baseEpoch: msg.baseEpoch,
      ballot: msg.ballot,
      ...(this.#accepted ? { accepted: { ballot: this.#accepted.ballot, change: this.#accepted.change } } : {}),
      ...(alive.length > 0 ? { alive } : {}),
    })
  }

  onAccept(msg: MessageOf<'accept'>, from: string): void {
    if (this.#check(msg, from)) return
    const view = this.#s.view
    if (!view) return
    if (viewDigest(applyChange(view, msg.change)) !== msg.digest) {
      // Two guests with one epoch and different lists would be a broken invariant: refuse, and say so loudly.
      this.#s.env.log.error({ epoch: view.epoch, from }, 'a proposed change does not apply to this guest list; refusing it')
      this.#nack(msg.rid, from, 'CONFLICT')
      return
    }
    this.acceptLocal(msg.ballot, msg.change, msg.digest)
    this.#s.env.send(from, { type: 'accepted', re: msg.rid, from: this.#s.self.id, baseEpoch: msg.baseEpoch, ballot: msg.ballot })
  }

  /** The refusal a prepare or accept gets, if any (it is sent here). */
  #check(msg: MessageOf<'prepare'> | MessageOf<'accept'>, from: string): boolean {
    const s = this.#s
    const view = s.view
    if (!view || (s.status !== 'guest' && s.status !== 'leaving')) return true
    this.#sync()
    this.#see(msg.ballot)
    if (msg.baseEpoch < view.epoch) {
      this.#nack(msg.rid, from, 'NEWER_EPOCH')
      return true
    }
    if (msg.baseEpoch > view.epoch) {
      this.#nack(msg.rid, from, 'OLDER_EPOCH')
      s.noticeEpoch(msg.baseEpoch, from)
      return true
    }
    if (this.#promised && compareBallots(msg.ballot, this.#promised) < 0) {
      this.#nack(msg.rid, from, 'PROMISED')
      return true
    }
    return false
  }

  #nack(re: number, to: string, code: 'NEWER_EPOCH' | 'OLDER_EPOCH' | 'PROMISED' | 'CONFLICT'): void {
    const s = this.#s
    s.env.send(to, { type: 'nack', re, from: s.self.id, epoch: s.view?.epoch ?? 0, code, ...(this.#promised ? { promised: this.#promised } : {}) })
  }

  /** Promises `ballot`, durably (a resent prepare of the same ballot costs no second write). */
  #promise(ballot: Ballot): void {
    if (this.#promised && compareBallots(ballot, this.#promised) === 0) return
    this.#promised = ballot
    this.#s.persist()
  }

  #see(ballot: Ballot): void {
    if (ballot.round > this.#highestRound) this.#highestRound = ballot.round
  }

  /** A new epoch starts a new instance: nothing promised or accepted yet. */
  #sync(): void {
    const epoch = this.#s.view?.epoch ?? -1
    if (epoch === this.#baseEpoch) return
    this.#baseEpoch = epoch
    this.#promised = undefined
    this.#accepted = undefined
  }
}
