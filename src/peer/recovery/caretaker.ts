import type { Clock } from '../../shared/clock.ts'
import type { RecoverySettings } from '../../shared/config.ts'
import { delay, type Startable, yieldToLoop } from '../../shared/lifecycle.ts'
import type { Logger } from '../../shared/logger.ts'
import { Throttle } from '../../shared/throttle.ts'
import type { FilesContext } from '../files/index.ts'
import type { ViewChange } from '../membership/index.ts'
import type { FileRecord, GuestId } from '../protocol/index.ts'
import { type Arc, type ArcParts, type PartDigests, primaryArc, ringPosition } from '../ring/index.ts'
import type { TrackerStore } from '../tracker/index.ts'
import { Absences } from './absences.ts'
import { ArcWalk, catchUp, recordsInParts } from './arc-walk.ts'
import type { Presence } from './assess.ts'
import { type Census, digestsAgree, takeArcCensus, takePartCensus } from './census.ts'
import { CENSUS_SETTLE_MS, SETTLE_MS, UNCERTAIN_RECHECK_MS, VIEW_SETTLE_MS } from './constants.ts'
import { DegradedSince } from './degraded-since.ts'
import { addOutcome, type CarryOut, carryOut, outcomeOf, type PassOutcome, type RecoveryEvents, sameGuests } from './execute.ts'
import { RecordHandoff } from './handoff.ts'
import type { ArcHealth } from './health.ts'
import { ownership, type Plan, plan } from './plan.ts'
import { addRisk, layoutKey, noRisk, worstRisk } from './spread.ts'

export interface CaretakerOptions {
  ctx: FilesContext
  records: TrackerStore
  settings: RecoverySettings
  events: RecoveryEvents
  clock: Clock
  log: Logger
}

/**
 * Keeps the files this peer is primary tracker of (the first of their
 * trackers on the ring) at full redundancy, and its tracker records where the
 * ring says they belong. Only the primary repairs a file, so a lost fragment
 * is rebuilt once however many peers see the death; if two peers ever both
 * believe they are primary, the trackers keep one record and the other's
 * fragments are dropped.
 *
 * A quick pass runs on every view change: records move to their new
 * trackers, and fragments on departed guests are rebuilt. A census pass runs
 * on a timer: it compares, by digest, what every guest holds of the names
 * this peer is primary of with what the records say, so it also finds fragments
 * lost on live guests (scrubbed, deleted by hand), fragments nobody tracks
 * (dropped, or turned back into a record if the trackers lost it), and
 * evens out the bytes each guest holds. What to do is decided by `plan`
 * (pure); this class gathers its inputs, schedules passes and carries the
 * plan out.
 */
export class Caretaker implements Startable {
  readonly #o: CaretakerOptions
  readonly #throttle: Throttle
  readonly #handoff: RecordHandoff
  #stopping = new AbortController()
  readonly #degradedSince = new DegradedSince()
  /** name → from when this peer may repair it (see `ownership`). */
  #repairFrom = new Map<string, number>()
  readonly #absences: Absences
  /** Admitted again since the pass under way began: what it planned may rest on records that missed changes. */
  #readmittedSince = false
  /** Guests that did not answer the last census: what they hold is unknown, not healthy. */
  #silent: ReadonlySet<GuestId> = new Set()
  #wakeAt: number | undefined
  #wake: NodeJS.Timeout | undefined
  #lastGuests: readonly GuestId[] | undefined
  /** Live files in this peer's arc, as the last full pass counted them. */
  #files = 0
  /** What the last pass found when it found nothing to do (see #stillQuiet). */
  #quiet: { ring: string; changes: number; arc: Arc; expected: ReadonlyMap<GuestId, PartDigests>; files: number } | undefined
  /** The last full pass found no file the loss of one domain would make unreadable. */
  #riskFree = false
  /**
   * What the records of this peer's arc say each guest holds, kept up to date from the tracker's change log since the last
   * full census (see #censusOfChanges); `clean` when the last pass left nothing waiting (degraded, lost, due later, unknown).
   */
  #baseline:
    | { ring: string; parts: ArcParts; expected: ReadonlyMap<GuestId, PartDigests>; files: number; clean: boolean; unplanned: readonly string[] }
    | undefined
  #timer: NodeJS.Timeout | undefined
  #debounce: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #queued: { census: boolean } | undefined

  constructor(options: CaretakerOptions) {
    this.#o = options
    this.#throttle = new Throttle(options.settings.bytesPerSecond, options.clock)
    this.#absences = new Absences(options.settings.rebuildDelayMs)
    this.#handoff = new RecordHandoff(options.records, options.ctx.trackers, options.log, options.events)
  }

  get throttle(): Throttle {
    return this.#throttle
  }

  start(signal?: AbortSignal): void {
    this.#stopping = new AbortController()
    signal?.addEventListener('abort', () => this.#stopping.abort(), { once: true })
    const every = this.#o.settings.censusIntervalMs
    if (every > 0) this.#timer = setInterval(() => void this.run(true), every)
    this.#timer?.unref()
  }

  /** No pass starts from now on; resolves once the pass under way (a repair may be writing) has stopped. */
  async stop(): Promise<void> {
    this.#stopping.abort()
    clearInterval(this.#timer)
    clearTimeout(this.#debounce)
    clearTimeout(this.#wake)
    await this.#running
  }

  /** The guest list changed: a quick pass once it settles (joins and deaths often come in bursts). */
  viewChanged(change?: ViewChange): void {
    if (change && change.after.guests.length > 0) {
      this.#absences.viewChanged(change, this.#o.clock.now())
      if (change.added.some((g) => g.id === this.#o.ctx.roster.selfId)) this.#readmitted()
    }
    if (this.#stopping.signal.aborted) return
    clearTimeout(this.#debounce)
    this.#debounce = setTimeout(() => void this.run(false), VIEW_SETTLE_MS)
    this.#debounce.unref()
  }

  /** Runs a pass now, or right after the one under way. Resolves when that pass is done. */
  run(census: boolean): Promise<void> {
    if (this.#stopping.signal.aborted) return Promise.resolve()
    if (this.#running) {
      this.#queued = { census: census || (this.#queued?.census ?? false) }
      return this.#running
    }
    this.#running = (async () => {
      let next: { census: boolean } | undefined = { census }
      while (next && !this.#stopping.signal.aborted) {
        this.#queued = undefined
        try {
          await this.#pass(next.census)
        } catch (err) {
          if (!this.#stopping.signal.aborted) this.#o.log.warn({ err: (err as Error).message }, 'recovery pass failed; retrying on the next one')
        }
        next = this.#queued
      }
    })().finally(() => {
      this.#running = undefined
    })
    return this.#running
  }

  /** Tracker handoff to the ring of `guests` (also the last step of a graceful leave). */
  handOff(self: GuestId, guests: readonly GuestId[], signal = this.#stopping.signal): Promise<void> {
    return this.#handoff.run(self, guests, signal)
  }

  async #pass(withCensus: boolean): Promise<void> {
    const { ctx } = this.#o
    const signal = this.#stopping.signal
    const self = ctx.roster.selfId
    const guests = ctx.roster.guests().map((g) => g.id)
    if (!self || !guests.includes(self)) return
    // Paused lately, the others may have gone on without this peer: looked at again once it knows where it stands.
    if (ctx.roster.uncertain()) return this.#runAt(this.#o.clock.now() + UNCERTAIN_RECHECK_MS)
    this.#readmittedSince = false
    await this.handOff(self, guests, signal)
    const isPrimary = (name: string): boolean => ctx.trackers.trackersOf(name, guests)[0] === self
    const arc = primaryArc(guests, self)
    const ring = layoutKey(guests, ctx.roster.domainsOf)
    if (withCensus && (await this.#stillQuiet(ring, this.#o.records.changes, signal))) return
    if (withCensus && (await this.#censusOfChanges(ring, guests, isPrimary, signal))) return
    this.#quiet = undefined
    this.#baseline = undefined
    // Files one loss from being lost are repaired first, across the whole arc: a walk repairs only those, and a second the rest.
    if ((await this.#fullPass(arc, guests, isPrimary, withCensus, true)) > 0) await this.#fullPass(arc, guests, isPrimary, withCensus, false)
  }

  /**
   * A pass over every record of this peer's arc, a chunk at a time (ArcWalk): each chunk's records are read,
   * a census of its stretch of the arc taken, planned and carried out before the next is read, so a pass at a
   * million files holds ten thousand records, not the arc, and the event loop runs between chunks. The walk
   * also gives the digests the whole arc should show, as of its end: the baseline of the census of changes.
   */
  async #fullPass(arc: Arc, guests: readonly GuestId[], isPrimary: (name: string) => boolean, withCensus: boolean, atRiskOnly: boolean): Promise<number> {
    const { ctx } = this.#o
    const signal = this.#stopping.signal
    const self = ctx.roster.selfId as GuestId
    const previous = this.#lastGuests
    const walk = new ArcWalk(this.#o.records, arc, guests)
    this.#degradedSince.newPass()
    const repairFrom = new Map<string, number>()
    const total: PassOutcome = { degraded: 0, lost: 0, repaired: 0, deferred: 0, moves: 0, nothingToDo: true, clean: true }
    const silent = new Set<GuestId>()
    const risk = noRisk()
    let differing = 0
    for (const chunk of walk.chunks()) {
      // Records first, census second: a record in this chunk had all its fragments durable before the census asked.
      const records = chunk.records.filter((r) => isPrimary(r.name))
      this.#o.events.recordsRead('full', records.length)
      const census = withCensus ? await takeArcCensus(ctx.fragments, chunk.arc, records, guests, signal) : undefined
      for (const g of census?.silent ?? []) silent.add(g)
      if (census?.exchanged) this.#o.events.census(census.exchanged)
      differing += census?.exchanged?.differing ?? 0
      const now = this.#o.clock.now()
      const owned = ownership(
        this.#repairFrom,
        records.map((r) => r.name),
        { self, guests, now, settleMs: SETTLE_MS, previousPrimary: (name) => (previous ? ctx.trackers.trackersOf(name, previous)[0] : undefined) },
      )
      for (const [name, from] of owned) repairFrom.set(name, from)
      if (withCensus) this.#silent = silent
      // Until the walk ends the arc's file count is not known: the last pass's stands in for it.
      const report = ({ degraded, lost, atRisk }: Plan['health']): void => {
        this.#degradedSince.note([], degraded, now)
        addRisk(risk, atRisk)
        this.#o.events.health(Math.max(walk.files, this.#files), total.degraded + degraded.size - total.repaired, total.lost + lost)
      }
      const limits = { moves: this.#o.settings.rebalanceMoves - total.moves, atRiskOnly }
      const outcome = await this.#planAndCarryOut(records, guests, census, isPrimary, now, owned, limits, report)
      addOutcome(total, outcome)
      // A pass that leaves something waiting is followed by a full pass, not a census of changes: see #baseline.
      if (!total.clean) walk.forgetUnplanned()
      if (signal.aborted) return 0
      // A chunk with nothing to repair awaits no I/O: without this a pass held the event loop (pings, the heap governor's collections) for seconds.
      await yieldToLoop()
    }
    this.#repairFrom = repairFrom
    this.#degradedSince.passDone()
    this.#lastGuests = guests
    this.#files = walk.files
    this.#o.events.health(walk.files, total.degraded - total.repaired, total.lost)
    const worst = worstRisk(risk)
    this.#o.events.atRisk(worst)
    this.#riskFree = worst.node + worst.zone + worst.region === 0
    const clean = total.clean && withCensus && silent.size === 0
    if (withCensus && silent.size === 0 && walk.logged) {
      const ring = layoutKey(guests, ctx.roster.domainsOf)
      // Records written behind the walk were counted, not planned: the census of changes that follows plans them.
      // (Forgotten only by a pass that left something waiting: not clean, so no census of changes reads them.)
      const unplanned = walk.unplanned && [...walk.unplanned]
      this.#baseline = { ring, parts: walk.parts, expected: walk.expected, files: walk.files, clean, unplanned: unplanned ?? [] }
      if (differing === 0 && total.nothingToDo && unplanned?.length === 0) {
        this.#quiet = { ring, changes: walk.changes, arc, expected: walk.expected, files: walk.files }
      }
    }
    return total.deferred
  }

  /**
   * A census pass that reads only what changed: the digests the last full
   * census expected of each guest are brought up to date with the records
   * written since (the tracker's change log), and compared; only the parts
   * where a guest differs are read and listed, and only their records and
   * the changed ones are planned. A burst of puts costs a pass what it
   * wrote, not what the arc holds. False (the caller takes a full census)
   * after a view change, a log that overflowed, a silent guest, or a last
   * pass that left something waiting: those need every record looked at.
   */
  async #censusOfChanges(ring: string, guests: readonly GuestId[], isPrimary: (name: string) => boolean, signal: AbortSignal): Promise<boolean> {
    const base = this.#baseline
    if (!base?.clean || base.ring !== ring) return false
    // Whatever this pass finds, the last one's verdicts no longer stand: it sets them again if they do.
    this.#baseline = undefined
    this.#quiet = undefined
    const { parts } = base
    const expected = new Map([...base.expected].map(([guest, digests]) => [guest, digests.copy()]))
    const caught = await catchUp(this.#o.records, parts, expected)
    if (!caught) return false
    let { changes, files } = caught
    files += base.files
    // Records the last census left for this one (their part was unsettled) are looked at again, as changed ones.
    const changed = new Map(caught.changed.map((r) => [r.name, r]))
    for (const name of base.unplanned) {
      const record = this.#o.records.get(name)
      if (record && !changed.has(name) && parts.partOf(ringPosition(name)) !== undefined) changed.set(name, record)
    }
    // Parts that differ are looked at again a moment later (a put in flight has stored fragments before its record).
    const settle = async (): Promise<FileRecord[] | undefined> => {
      await delay(Math.min(CENSUS_SETTLE_MS, this.#o.settings.censusIntervalMs / 4), signal)
      const more = await catchUp(this.#o.records, parts, expected)
      if (!more) return undefined
      changes = more.changes
      files += more.files
      return more.changed
    }
    const read = (selected: ReadonlySet<number>): FileRecord[] => recordsInParts(this.#o.records, parts, selected, isPrimary)
    const taken = await takePartCensus(this.#o.ctx.fragments, parts, expected, [...changed.values()], read, signal, settle)
    if (!taken) return false
    const { census, records, unplanned } = taken
    this.#o.events.recordsRead('changes', records.length)
    this.#silent = census.silent
    if (census.exchanged) this.#o.events.census(census.exchanged)
    const now = this.#o.clock.now()
    // A pass over part of the arc knows only the names it read: the others were whole, or it would have read them.
    const looked = records.map((r) => r.name)
    const report = ({ degraded, lost }: Plan['health']): void => {
      this.#degradedSince.note(looked, degraded, now)
      this.#o.events.health(files, degraded.size, lost)
    }
    const limits = { moves: this.#o.settings.rebalanceMoves, atRiskOnly: false }
    const outcome = await this.#planAndCarryOut(records, guests, census, isPrimary, now, this.#repairFrom, limits, report)
    if (outcome.repaired > 0) this.#o.events.health(files, outcome.degraded - outcome.repaired, outcome.lost)
    this.#baseline = { ring, parts, expected, files, clean: outcome.clean, unplanned }
    if (census.exchanged?.differing === 0 && unplanned.length === 0 && outcome.nothingToDo) this.#quiet = { ring, changes, arc: parts.arc, expected, files }
    return true
  }

  /**
   * Plans `records` against `census` and carries the plan out (within `limits`, see PlanInput). `report` hears which
   * files are degraded, and how many lost, before the repairs start. Returns what the pass found (see PassOutcome).
   */
  async #planAndCarryOut(
    records: readonly FileRecord[],
    guests: readonly GuestId[],
    census: Census | undefined,
    isPrimary: (name: string) => boolean,
    now: number,
    repairFrom: ReadonlyMap<string, number>,
    limits: { moves: number; atRiskOnly: boolean },
    report: (health: Plan['health']) => void,
  ): Promise<PassOutcome> {
    const { ctx } = this.#o
    const presence: Presence & { now: number } = { guests: new Set(guests), census, silent: this.#silent, rebuildDue: (id) => this.#absences.due(id, now), now }
    const { orphanGraceMs } = this.#o.settings
    const rebalanceMoves = Math.max(0, limits.moves)
    const domains = (id: GuestId) => ctx.roster.domainsOf(id)
    const decided = plan({ records, presence, isPrimary, repairFrom, orphanGraceMs, rebalanceMoves, atRiskOnly: limits.atRiskOnly, domains })
    report(decided.health)
    if (decided.wakeAt !== undefined) this.#runAt(decided.wakeAt)
    const env: CarryOut = {
      ctx,
      current: () => !this.#readmittedSince && ctx.roster.uncertain() === undefined && sameGuests(ctx.roster.guests(), guests),
      log: this.#o.log,
      events: this.#o.events,
      throttle: this.#throttle,
      concurrency: this.#o.settings.concurrency,
      signal: this.#stopping.signal,
      repaired: (name) => this.#repaired(name),
    }
    return outcomeOf(decided, await carryOut(decided, env), census)
  }

  /**
   * The health of `arc` without reading a record, on a quiet party (see #stillQuiet): every file whole, as the last
   * pass counted them, and none at risk of one domain (puts on an unchanged guest list place as the files before
   * them). Undefined when that cannot be vouched for; the caller then takes a census of the arc.
   */
  async quietHealth(arc: Arc, signal?: AbortSignal): Promise<ArcHealth | undefined> {
    const quiet = this.#quiet
    const guests = this.#o.ctx.roster.guests().map((g) => g.id)
    if (!quiet || !this.#riskFree || quiet.arc.from !== arc.from || quiet.arc.to !== arc.to) return undefined
    if (!(await this.#stillQuiet(layoutKey(guests, this.#o.ctx.roster.domainsOf), this.#o.records.changes, signal ?? this.#stopping.signal))) return undefined
    return { files: quiet.files, healthy: quiet.files, degraded: 0, lost: 0, worst: [], silent: [], atRisk: { region: [], zone: [], node: [] } }
  }

  /**
   * A census on a quiet party: when the last pass found every file whole and
   * nothing to do, and since then neither the guests nor a record here
   * changed, the same records would give the same plan. Only the guests'
   * digests are compared with those that pass expected; if they all agree,
   * the pass is over without reading a record, so an idle party's census
   * costs the same however many files it holds.
   */
  async #stillQuiet(ring: string, changes: number, signal: AbortSignal): Promise<boolean> {
    const quiet = this.#quiet
    if (!quiet || quiet.ring !== ring || quiet.changes !== changes) return false
    const { agreed, parts } = await digestsAgree(this.#o.ctx.fragments, quiet.arc, quiet.expected, signal)
    this.#o.events.census({ parts, differing: agreed ? 0 : 1, listed: 0 })
    return agreed
  }

  /** A file is whole again: how long it was degraded goes to the metrics. */
  #repaired(name: string): void {
    const since = this.#degradedSince.recovered(name)
    if (since !== undefined) this.#o.events.recovered((this.#o.clock.now() - since) / 1000)
  }

  /** Admitted again after it was voted out: nothing is planned on its records before they are compared with the others'. */
  #readmitted(): void {
    this.#readmittedSince = true
    this.#handoff.unsettle()
    this.#quiet = undefined
    this.#baseline = undefined
  }

  /** Runs a quick pass at `at` (the earliest of those asked for). */
  #runAt(at: number): void {
    if (this.#stopping.signal.aborted || (this.#wakeAt !== undefined && this.#wakeAt <= at)) return
    clearTimeout(this.#wake)
    this.#wakeAt = at
    this.#wake = setTimeout(
      () => {
        this.#wakeAt = undefined
        void this.run(false)
      },
      Math.max(0, at - this.#o.clock.now()),
    )
    this.#wake.unref()
  }
}
