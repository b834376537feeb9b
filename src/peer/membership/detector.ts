import type { Guest, GuestId, MessageOf, Reply } from '../protocol/index.ts'
import { DEAD_TTL_MS, LAG_WINDOW_MS, MAX_STRETCH_MS, PING_FANOUT } from './constants.ts'
import type { Shared } from './state.ts'
import { isQuorum, type ViewDiff } from './view.ts'

/** What this peer knows of one other guest's liveness. */
interface Watch {
  guest: Guest
  /** When it last said anything (any authenticated message): silence is measured from here, never reset by a vote. */
  lastHeard: number
  /** When this peer first pinged it after its last word (undefined: it has answered since). */
  askedSince: number | undefined
  /** The event-loop lag it last reported, and when. */
  lag: number
  lagAt: number
  held: number | undefined
  /** The newest guest-list epoch its pings and pongs carried: it has installed that list. */
  epoch: number
  /** No new vote on it before this (one just ended). */
  quietUntil: number
}

interface Vote {
  target: Guest
  started: number
  deadline: number
  /** Voters still to answer. */
  waiting: Set<GuestId>
  unreachable: Set<GuestId>
  alive: boolean
  abstained: number
  rids: number[]
}

/**
 * Failure detection by ping-voting. Each guest pings the others (all of
 * them, or PING_FANOUT a round when the party is large). The first to find a
 * guest silent for the suspect timeout asks every other guest to ping it; it
 * is voted dead only if
 *   - nobody reached it and nothing was heard from it since the vote began,
 *   - no voter abstained (a voter that is starved or just woke from a pause
 *     cannot tell silence from its own slowness), and
 *   - the voters who could not reach it, with this peer, are a quorum of the
 *     guest list: a minority cut off from the rest votes nobody dead.
 * Every timeout stretches with the event-loop lag this peer and the suspect
 * report (Lifeguard), and a peer that is itself starved starts no vote, so
 * load slows detection down instead of killing live guests.
 */
export class Detector {
  readonly #s: Shared
  readonly #onDead: (id: GuestId) => void
  readonly #watches = new Map<GuestId, Watch>()
  /** Guests pinged and not heard from since: they are pinged every interval until they answer. */
  readonly #asked = new Set<GuestId>()
  /** Voted dead, until the removal commits (or DEAD_TTL_MS passes). */
  readonly #dead = new Map<GuestId, number>()
  /** Someone else is voting on these, until then: one vote per suspect is enough. */
  readonly #othersVoting = new Map<GuestId, number>()
  readonly #votes = new Map<GuestId, Vote>()
  /** pingReqs being answered, by requester and rid (a resent pingReq must not start a second probe). */
  readonly #probing = new Set<string>()
  #order: GuestId[] = []
  #cursor = 0
  #nextPingAt = 0

  constructor(shared: Shared, onDead: (id: GuestId) => void) {
    this.#s = shared
    this.#onDead = onDead
  }

  /** The guests voted dead whose removal is pending. */
  get dead(): ReadonlySet<GuestId> {
    return new Set(this.#dead.keys())
  }

  heldBytes(id: GuestId): number | undefined {
    return this.#watches.get(id)?.held
  }

  /** The worst lag any guest reported in the last few seconds. */
  worstLag(): number {
    let worst = 0
    for (const w of this.#watches.values()) if (this.#s.now - w.lagAt < LAG_WINDOW_MS && w.lag > worst) worst = w.lag
    return Math.min(worst, MAX_STRETCH_MS)
  }

  lagOf(id: GuestId): number {
    const w = this.#watches.get(id)
    return w && this.#s.now - w.lagAt < LAG_WINDOW_MS ? Math.min(w.lag, MAX_STRETCH_MS) : 0
  }

  viewInstalled(diff: ViewDiff): void {
    const now = this.#s.now
    for (const g of diff.removed) this.#forget(g.id)
    // A newcomer (or a newer start of a guest) gets a full silence period before it can be suspected.
    for (const g of diff.added)
      this.#watches.set(g.id, { guest: g, lastHeard: now, askedSince: undefined, lag: 0, lagAt: now, held: undefined, epoch: 0, quietUntil: 0 })
    const current = new Map(this.#s.others().map((g) => [g.id, g]))
    for (const [id, w] of this.#watches) {
      const g = current.get(id)
      if (!g) this.#forget(id)
      else w.guest = g // an entry updated in place (a restart at a new address) is reached at its new address
    }
    this.#order = []
  }

  /** This peer left the guest list: nothing of the old party is watched any more. */
  reset(): void {
    for (const v of this.#votes.values()) for (const rid of v.rids) this.#s.requests.cancel(rid)
    this.#watches.clear()
    this.#asked.clear()
    this.#dead.clear()
    this.#othersVoting.clear()
    this.#votes.clear()
    this.#order = []
  }

  /** This peer was paused: the silence it saw was its own. Every clock restarts, and its own votes are void. */
  pauseEnded(): void {
    const now = this.#s.now
    for (const w of this.#watches.values()) {
      w.lastHeard = now
      w.askedSince = undefined
    }
    this.#asked.clear()
    for (const v of this.#votes.values()) for (const rid of v.rids) this.#s.requests.cancel(rid)
    this.#votes.clear()
  }

  /** Any authenticated word from a guest proves it alive, and takes back a verdict of death not yet carried out. */
  heard(id: GuestId): void {
    const w = this.#watches.get(id)
    if (!w) return
    w.lastHeard = this.#s.now
    w.askedSince = undefined
    this.#asked.delete(id)
    const vote = this.#votes.get(id)
    if (vote) this.#conclude(vote)
    if (this.#dead.delete(id)) {
      this.#s.event('removal_refuted')
      this.#s.env.log.info({ guest: id }, 'a guest voted dead spoke again; it stays')
    }
  }

  /**
   * Guests heard from lately, this peer included: if they are no quorum,
   * this peer is cut off (or its list is stale). In a party larger than the
   * ping fanout a guest is pinged only every few rounds, so "lately" spans
   * two such rounds.
   */
  inTouch(): Set<GuestId> {
    const others = this.#watches.size
    const round = others > PING_FANOUT ? 2 * Math.ceil(others / PING_FANOUT) * this.#s.timings.pingIntervalMs : 0
    const out = new Set<GuestId>([this.#s.self.id])
    for (const [id, w] of this.#watches) if (this.#s.now - w.lastHeard < this.#suspectTimeout(id) + round) out.add(id)
    return out
  }

  /** Has every other guest shown (in a ping or pong) that it installed a list of at least this epoch? */
  allAt(epoch: number): boolean {
    for (const w of this.#watches.values()) if (w.epoch < epoch) return false
    return true
  }

  heardWithin(id: GuestId, ms: number): boolean {
    const w = this.#watches.get(id)
    return w !== undefined && this.#s.now - w.lastHeard < ms
  }

  /** Another guest's vote (relayed in a remove request) found `id` dead. */
  markDead(id: GuestId): void {
    if (this.#watches.has(id)) this.#dead.set(id, this.#s.now + DEAD_TTL_MS)
  }

  /** Takes back verdicts another guest objected to (it heard from them). */
  refute(ids: Iterable<GuestId>): void {
    for (const id of ids) {
      if (!this.#dead.delete(id)) continue
      const w = this.#watches.get(id)
      if (w) w.quietUntil = this.#s.now + this.#suspectTimeout(id)
      this.#s.event('removal_refuted')
    }
  }

  /** Is this peer fit to judge others' silence? Not while starved, nor just after a pause. */
  healthy(): boolean {
    const now = this.#s.now
    return !this.#s.lag.recentlyPaused(now) && this.#s.lag.lag(now) < this.#s.timings.suspectAfterMs / 2
  }

  /** A request to `id` timed out: ask everyone whether it is gone (unless a vote on it is under way or just ended). */
  suspect(id: GuestId): void {
    const w = this.#watches.get(id)
    if (w && !this.#dead.has(id)) this.#startVote(w)
  }

  tick(): void {
    const now = this.#s.now
    for (const [id, until] of this.#dead) if (until <= now) this.#dead.delete(id)
    for (const [id, until] of this.#othersVoting) if (until <= now) this.#othersVoting.delete(id)
    for (const vote of this.#votes.values()) if (now >= vote.deadline) this.#conclude(vote)
    if (now >= this.#nextPingAt) {
      this.#nextPingAt = Math.max(this.#nextPingAt + this.#s.timings.pingIntervalMs, now)
      this.#pingRound()
    }
    if (!this.healthy()) return
    for (const id of this.#asked) {
      const w = this.#watches.get(id)
      if (!w || w.askedSince === undefined || this.#dead.has(id)) continue
      const timeout = this.#suspectTimeout(id)
      if (now - w.lastHeard >= timeout && now - w.askedSince >= timeout / 2) this.#startVote(w)
    }
  }

  #suspectTimeout(id: GuestId): number {
    return this.#s.timings.suspectAfterMs + 2 * this.#s.stretch(id)
  }

  #forget(id: GuestId): void {
    const vote = this.#votes.get(id)
    if (vote) for (const rid of vote.rids) this.#s.requests.cancel(rid)
    this.#votes.delete(id)
    this.#watches.delete(id)
    this.#asked.delete(id)
    this.#dead.delete(id)
    this.#othersVoting.delete(id)
  }

  /** Pings everyone, or the next PING_FANOUT of a shuffled round plus everyone who owes an answer. */
  #pingRound(): void {
    const others = this.#s.others()
    let targets: readonly Guest[] = others
    if (others.length > PING_FANOUT) {
      const picked = new Set<GuestId>(this.#asked)
      for (let n = 0; n < PING_FANOUT; n++) {
        if (this.#cursor >= this.#order.length) {
          this.#order = shuffle(
            others.map((g) => g.id),
            this.#s.env.random,
          )
          this.#cursor = 0
        }
        picked.add(this.#order[this.#cursor++] as GuestId)
      }
      targets = [...picked].flatMap((id) => {
        const w = this.#watches.get(id)
        return w ? [w.guest] : []
      })
    }
    for (const g of targets) this.#ping(g)
  }

  #ping(g: Guest): void {
    const s = this.#s
    const w = this.#watches.get(g.id)
    if (!w) return
    if (w.askedSince === undefined) {
      w.askedSince = s.now
      this.#asked.add(g.id)
    }
    s.env.send(s.addressOf(g), {
      type: 'ping',
      rid: s.requests.rid(),
      from: s.self.id,
      epoch: s.view?.epoch ?? 0,
      lag: s.lag.lag(s.now),
      held: s.env.heldBytes(),
    })
  }

  #startVote(w: Watch): void {
    const s = this.#s
    const now = s.now
    const target = w.guest
    const view = s.view
    if (!view || s.status !== 'guest' || this.#votes.has(target.id) || !this.healthy()) return
    if (w.quietUntil > now || (this.#othersVoting.get(target.id) ?? 0) > now) return
    const window = s.timings.voteTimeoutMs + 2 * s.stretch(target.id)
    const margin = Math.max(150, Math.round(window / 3))
    const resendMs = Math.max(20, Math.floor(window / 3))
    const voters = s.others().filter((g) => g.id !== target.id)
    const vote: Vote = {
      target,
      started: now,
      deadline: now + window + margin,
      waiting: new Set(voters.map((v) => v.id)),
      unreachable: new Set(),
      alive: false,
      abstained: 0,
      rids: [],
    }
    this.#votes.set(target.id, vote)
    s.event('suspected')
    s.env.log.info(
      { suspect: target.id, silentForMs: Math.round(now - w.lastHeard), voters: voters.length, windowMs: window },
      'guest suspected; asking every guest to ping it',
    )
    for (const v of voters) {
      const answered = (verdict: 'alive' | 'unreachable' | 'abstain' | 'silent'): void => {
        if (!vote.waiting.delete(v.id)) return
        if (verdict === 'alive') vote.alive = true
        else if (verdict === 'unreachable') vote.unreachable.add(v.id)
        else if (verdict === 'abstain') vote.abstained++
        if (vote.alive || vote.waiting.size === 0) this.#conclude(vote)
      }
      const rid = s.requests.send(
        s.addressOf(v),
        (rid) => ({ type: 'pingReq', rid, from: s.self.id, target: target.id, epoch: view.epoch, windowMs: window }),
        { timeoutMs: window + margin, resendMs },
        now,
        // Only the voter asked may answer for itself (another peer may live at its old address now).
        (reply: Reply) => answered(reply.type === 'pingReqResult' && reply.from === v.id ? reply.verdict : 'silent'),
        () => answered('silent'),
      )
      vote.rids.push(rid)
    }
    // Ping the suspect directly too: any answer (counted by heard()) saves it.
    vote.rids.push(
      s.requests.send(
        s.addressOf(target),
        (rid) => ({ type: 'ping', rid, from: s.self.id, epoch: view.epoch, lag: s.lag.lag(now), held: s.env.heldBytes() }),
        { timeoutMs: window, resendMs },
        now,
        (reply) => {
          // A pong from the suspect ends the vote at once (heard() has counted it); anything else proves nothing.
          if (reply.type === 'pong' && reply.from === target.id) this.#conclude(vote)
        },
      ),
    )
    if (voters.length === 0) vote.deadline = now + window
  }

  #conclude(vote: Vote): void {
    const s = this.#s
    if (this.#votes.get(vote.target.id) !== vote) return
    this.#votes.delete(vote.target.id)
    for (const rid of vote.rids) s.requests.cancel(rid)
    const w = this.#watches.get(vote.target.id)
    const view = s.view
    if (!w || !view) return
    const id = vote.target.id
    w.quietUntil = s.now + this.#suspectTimeout(id)
    if (vote.alive || w.lastHeard >= vote.started) {
      s.event('vote_alive')
      s.env.log.info({ suspect: id }, 'suspect is alive')
      return
    }
    const agreeing = new Set([...vote.unreachable, s.self.id])
    if (vote.abstained > 0 || !isQuorum(view, agreeing) || !this.healthy()) {
      s.event('vote_inconclusive')
      s.env.log.info(
        { suspect: id, unreachable: vote.unreachable.size, abstained: vote.abstained, silent: vote.waiting.size },
        'vote on a suspect inconclusive; it stays for now',
      )
      return
    }
    const silentMs = Math.round(s.now - w.lastHeard)
    this.#dead.set(id, s.now + DEAD_TTL_MS)
    s.event('vote_dead')
    s.env.output({ kind: 'deathDeclared', id, silentMs })
    s.env.log.warn({ suspect: id, voters: agreeing.size - 1, silentForMs: silentMs }, 'no guest can reach the suspect; declaring it dead')
    this.#onDead(id)
  }

  onPing(msg: MessageOf<'ping'>, from: string): void {
    const s = this.#s
    const w = this.#watches.get(msg.from)
    if (!s.view || (s.status !== 'guest' && s.status !== 'leaving') || !w) {
      s.env.send(from, { type: 'notGuest', re: msg.rid, epoch: s.view?.epoch ?? 0 })
      s.noticeEpoch(msg.epoch, from)
      return
    }
    this.#learn(w, msg.lag, msg.held, msg.epoch)
    s.env.send(from, { type: 'pong', re: msg.rid, from: s.self.id, epoch: s.view.epoch, lag: s.lag.lag(s.now), held: s.env.heldBytes() })
    s.noticeEpoch(msg.epoch, from)
  }

  onPong(msg: MessageOf<'pong'>, from: string): void {
    const w = this.#watches.get(msg.from)
    if (w) this.#learn(w, msg.lag, msg.held, msg.epoch)
    this.#s.noticeEpoch(msg.epoch, from)
  }

  #learn(w: Watch, lag: number, held: number | undefined, epoch: number): void {
    w.epoch = Math.max(w.epoch, epoch)
    w.lag = lag
    w.lagAt = this.#s.now
    if (held !== undefined) w.held = held
  }

  /** A voter's side of ping-voting: ping the target for the requester's window, then say what happened. */
  onPingReq(msg: MessageOf<'pingReq'>, from: string): void {
    const s = this.#s
    const key = `${from}|${msg.rid}`
    if (this.#probing.has(key)) return
    const answer = (verdict: 'alive' | 'unreachable' | 'abstain'): void => {
      this.#probing.delete(key)
      if (verdict === 'abstain') s.event('vote_abstained')
      s.env.send(from, { type: 'pingReqResult', re: msg.rid, from: s.self.id, target: msg.target, verdict })
    }
    // Not a guest (this may be a new start at an old guest's address): not a voter, so no answer at all.
    if (!s.view || (s.status !== 'guest' && s.status !== 'leaving')) return
    if (!this.#watches.has(msg.from)) return answer('abstain')
    // Someone is voting on this suspect: do not start a second vote on it meanwhile.
    this.#othersVoting.set(msg.target, s.now + msg.windowMs)
    if (!this.healthy()) return answer('abstain')
    const target = this.#watches.get(msg.target)
    if (!target) return answer(msg.target === s.self.id ? 'alive' : 'unreachable')
    if (this.heardWithin(msg.target, Math.min(s.timings.pingIntervalMs, msg.windowMs / 2))) return answer('alive')
    this.#probing.add(key)
    const started = s.now
    s.requests.send(
      s.addressOf(target.guest),
      (rid) => ({ type: 'ping', rid, from: s.self.id, epoch: s.view?.epoch ?? 0, lag: s.lag.lag(s.now), held: s.env.heldBytes() }),
      { timeoutMs: msg.windowMs, resendMs: Math.max(20, Math.floor(msg.windowMs / 3)) },
      s.now,
      // Only the suspect's own pong counts: another peer may answer at its old address now (a new start there, with another identity).
      (reply) => {
        if (reply.type === 'pong' && reply.from === msg.target) answer('alive')
        else answer(this.healthy() ? 'unreachable' : 'abstain')
      },
      () => {
        if ((this.#watches.get(msg.target)?.lastHeard ?? 0) >= started) answer('alive')
        else answer(this.healthy() ? 'unreachable' : 'abstain')
      },
    )
  }
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[items[i], items[j]] = [items[j] as T, items[i] as T]
  }
  return items
}
