import type { Clock } from '../../shared/clock.ts'
import { isHousePartyError } from '../../shared/errors.ts'
import type { Logger } from '../../shared/logger.ts'
import { Throttle } from '../../shared/throttle.ts'
import { dropFragments, type FilesContext } from '../files/index.ts'
import type { ViewChange } from '../membership/index.ts'
import type { FileRecord, FragmentRef, GuestId, HeldFragment, RemovalReason } from '../protocol/index.ts'
import { compareRecords, type TrackerStore } from '../tracker/index.ts'
import { type Assessment, assess, type Census, fragmentKey, type Presence, takeCensus } from './census.ts'
import { moveFragment, readoptFragments, repairFile } from './repair.ts'

export interface RecoverySettings {
  /** How often the full census (every guest's inventory) runs; view changes trigger a quick pass in between. */
  censusIntervalMs: number
  /** An unreferenced fragment younger than this may belong to a put or repair still running: it is left alone. */
  orphanGraceMs: number
  /** Files repaired at once. */
  concurrency: number
  /** Bytes per second that rebuilds and moves may read and write, all together (0: unlimited). */
  bytesPerSecond: number
  /** Fragments moved per census to even out the guests' bytes (0: no rebalancing). */
  rebalanceMoves: number
  /**
   * How long the fragments of a guest that vanished without leaving (voted
   * dead) wait before they are rebuilt elsewhere: a paused or restarted peer
   * comes back with them, and costs no rebuild (0: at once).
   */
  rebuildDelayMs: number
}

export interface RecoveryEvents {
  /** A degraded file is back to k+m fragments; seconds since this peer first saw it degraded. */
  recovered(seconds: number): void
  moved(reason: 'leave' | 'rebalance'): void
  orphanDropped(): void
  recordRebuilt(): void
  /** A fragment found on a live guest was recorded there instead of being rebuilt. */
  readopted(): void
  /** Files this peer is primary tracker of (deleted ones left out), those below k+m usable fragments, and those below k. */
  health(files: number, degraded: number, lost: number): void
}

export interface CaretakerOptions {
  ctx: FilesContext
  records: TrackerStore
  settings: RecoverySettings
  events: RecoveryEvents
  clock: Clock
  log: Logger
}

/** How long a new primary leaves a file to the previous one, still a guest, before repairing it itself. */
const SETTLE_MS = 3_000

interface RepairJob {
  record: FileRecord
  assessment: Assessment
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
 * on a timer: it reads every guest's inventory, so it also finds fragments
 * lost on live guests (scrubbed, deleted by hand), fragments nobody tracks
 * (dropped, or turned back into a record if the trackers lost it), and
 * evens out the bytes each guest holds.
 */
export class Caretaker {
  readonly #o: CaretakerOptions
  readonly #throttle: Throttle
  readonly #stopping = new AbortController()
  /** name → the tracker set the record was last pushed to. */
  readonly #pushed = new Map<string, string>()
  /** name → when this peer first saw the file degraded. */
  readonly #degradedSince = new Map<string, number>()
  /** name → since when this peer is its primary, if it took over from a guest still there (0: settled). */
  readonly #primarySince = new Map<string, number>()
  /** Guests that left the list, since when and why: their fragments wait out the rebuild delay unless they left on purpose. */
  readonly #absent = new Map<GuestId, { since: number; reason: RemovalReason | 'unknown' }>()
  /** Guests that did not answer the last census: what they hold is unknown, not healthy. */
  #silent: ReadonlySet<GuestId> = new Set()
  #wakeAt: number | undefined
  #wake: NodeJS.Timeout | undefined
  #lastGuests: readonly GuestId[] | undefined
  #timer: NodeJS.Timeout | undefined
  #debounce: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #queued: { census: boolean } | undefined

  constructor(options: CaretakerOptions) {
    this.#o = options
    this.#throttle = new Throttle(options.settings.bytesPerSecond, options.clock)
  }

  get throttle(): Throttle {
    return this.#throttle
  }

  start(): void {
    const every = this.#o.settings.censusIntervalMs
    if (every > 0) this.#timer = setInterval(() => void this.run(true), every)
    this.#timer?.unref()
  }

  stop(): void {
    this.#stopping.abort()
    clearInterval(this.#timer)
    clearTimeout(this.#debounce)
    clearTimeout(this.#wake)
  }

  /** The guest list changed: a quick pass once it settles (joins and deaths often come in bursts). */
  viewChanged(change?: ViewChange): void {
    if (change && change.after.guests.length > 0) {
      const now = this.#o.clock.now()
      for (const g of change.removed) if (!this.#absent.has(g.id)) this.#absent.set(g.id, { since: now, reason: change.reasons.get(g.id) ?? 'unknown' })
      for (const g of change.after.guests) this.#absent.delete(g.id)
    }
    clearTimeout(this.#debounce)
    this.#debounce = setTimeout(() => void this.run(false), 250)
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

  async #pass(census: boolean): Promise<void> {
    const { ctx } = this.#o
    const self = ctx.roster.selfId
    const guests = ctx.roster.guests().map((g) => g.id)
    if (!self || !guests.includes(self)) return
    await this.handOff(self, guests)
    // Records first, census second: a record in this snapshot had all its fragments durable before the census asked.
    let snapshot = this.#o.records.list().filter((r) => ctx.trackers.trackersOf(r.name)[0] === self)
    const found = census ? await takeCensus(ctx, this.#stopping.signal) : undefined
    const present = new Set(guests)
    const now = this.#o.clock.now()
    const presence: Presence = { guests: present, census: found, silent: this.#silent, rebuildDue: (id) => this.#rebuildDue(id, now), now }
    if (found) {
      this.#silent = found.silent
      snapshot = await this.#readopt(found, snapshot, presence)
      await this.#tidy(found, snapshot, guests, presence)
    }

    this.#noteOwnership(self, guests, snapshot, now)
    const jobs: RepairJob[] = []
    let files = 0
    let degraded = 0
    let lost = 0
    let deferred = 0
    let nextDue: number | undefined
    for (const record of snapshot) {
      if (record.deleted) {
        this.#degradedSince.delete(record.name)
        continue
      }
      files++
      const assessment = assess(record, presence)
      const { k, m } = record.coding
      if (assessment.nextDue !== undefined) nextDue = Math.min(nextDue ?? assessment.nextDue, assessment.nextDue)
      if (assessment.ok.length >= k + m) {
        this.#degradedSince.delete(record.name)
        continue
      }
      degraded++
      if (!this.#degradedSince.has(record.name)) this.#degradedSince.set(record.name, now)
      if (assessment.ok.length < k) lost++
      if (assessment.missing.length === 0 || assessment.ok.length < k) continue
      if (now - (this.#primarySince.get(record.name) ?? 0) < SETTLE_MS) deferred++
      else jobs.push({ record, assessment })
    }
    this.#o.events.health(files, degraded, lost)
    if (deferred > 0) this.#runAt(now + SETTLE_MS)
    // A guest that is away comes back, or its fragments are rebuilt once the delay is over.
    if (nextDue !== undefined) this.#runAt(nextDue + 50)
    if (jobs.length > 0) {
      this.#o.log.info({ files: jobs.length, degraded, lost }, 'repairing degraded files')
      const failed = await this.#repairAll(jobs)
      this.#o.events.health(files, degraded - (jobs.length - failed), lost)
    } else if (found && this.#o.settings.rebalanceMoves > 0) {
      await this.#rebalance(found, snapshot, presence)
    }
  }

  /** When the fragments of a holder that is not a guest may be rebuilt elsewhere. */
  #rebuildDue(holder: GuestId, now: number): number {
    let absence = this.#absent.get(holder)
    if (!absence) {
      // A holder this peer never saw leave (it was gone before this peer started): the delay counts from now.
      absence = { since: now, reason: 'unknown' }
      this.#absent.set(holder, absence)
    }
    // A guest that left for good handed off what it could: the rest is rebuilt at once. One voted dead, or one
    // that stepped out for a restart, is probably coming back with its data dir: its fragments wait for it.
    return absence.reason === 'leave' ? absence.since : absence.since + this.#o.settings.rebuildDelayMs
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

  /**
   * Fragments the record places where they are not (a holder that is away,
   * or answered without them) but that another live guest holds, the very
   * same (name, version, index, digest): the record is pointed at that copy,
   * revision + 1. Nothing is copied or rebuilt. Returns the snapshot with
   * the records this changed.
   */
  async #readopt(census: Census, snapshot: readonly FileRecord[], presence: Presence): Promise<FileRecord[]> {
    const out: FileRecord[] = []
    for (const record of snapshot) {
      if (record.deleted) {
        out.push(record)
        continue
      }
      const a = assess(record, presence)
      const holders = new Set(record.fragments.map((f) => f.holder))
      const found: FragmentRef[] = []
      for (const ref of [
        ...a.away,
        ...a.unknown,
        ...a.missing.map((index) => record.fragments.find((f) => f.index === index) ?? { index, holder: '', digest: '' }),
      ]) {
        const copy = census.where
          .get(fragmentKey(record.name, record.version, ref.index))
          ?.find((c) => presence.guests.has(c.holder) && !holders.has(c.holder) && (ref.digest === '' || c.fragment.digest === ref.digest))
        if (!copy) continue
        holders.add(copy.holder)
        found.push({ index: ref.index, holder: copy.holder, digest: copy.fragment.digest })
      }
      if (found.length === 0 || this.#stopping.signal.aborted) {
        out.push(record)
        continue
      }
      try {
        const result = await readoptFragments(this.#o.ctx, record, found, this.#stopping.signal)
        if (result.won) {
          for (const _ of found) this.#o.events.readopted()
          this.#o.log.info(
            { name: record.name, fragments: found.map((f) => ({ index: f.index, holder: f.holder })) },
            'fragments found on live guests; recorded there, nothing rebuilt',
          )
        }
        out.push(result.record)
      } catch (err) {
        this.#o.log.debug({ name: record.name, err: (err as Error).message }, 'could not re-adopt fragments; trying again on the next census')
        out.push(record)
      }
    }
    return out
  }

  /**
   * A peer that becomes primary of a file while the previous primary is
   * still a guest (a join moved the ring) waits SETTLE_MS before repairing
   * it: a repair the previous primary already started finishes and shows up
   * at the trackers, instead of being done twice. After a death there is
   * nobody to wait for.
   */
  #noteOwnership(self: GuestId, guests: readonly GuestId[], snapshot: readonly FileRecord[], now: number): void {
    const previous = this.#lastGuests
    const names = new Set<string>()
    for (const { name } of snapshot) {
      names.add(name)
      if (this.#primarySince.has(name)) continue
      const before = previous && this.#o.ctx.trackers.trackersOf(name, previous)[0]
      const tookOverFromLiveGuest = before === undefined || (before !== self && guests.includes(before))
      this.#primarySince.set(name, tookOverFromLiveGuest ? now : 0)
    }
    for (const name of this.#primarySince.keys()) if (!names.has(name)) this.#primarySince.delete(name)
    this.#lastGuests = guests
  }

  /** Repairs files fewest-surviving-fragments first, a few at a time. Returns how many are still degraded (failed, or with fragments still away). */
  async #repairAll(jobs: RepairJob[]): Promise<number> {
    const margin = (j: RepairJob): number => j.assessment.ok.length - j.record.coding.k
    jobs.sort((a, b) => margin(a) - margin(b))
    let failed = 0
    const queue = [...jobs]
    const worker = async (): Promise<void> => {
      for (let job = queue.shift(); job && !this.#stopping.signal.aborted; job = queue.shift()) {
        if (!(await this.#repair(job))) failed++
      }
    }
    await Promise.all(Array.from({ length: Math.max(1, this.#o.settings.concurrency) }, worker))
    return failed + queue.length
  }

  /** True when the file is whole again (or no longer this peer's to repair). */
  async #repair(job: RepairJob): Promise<boolean> {
    const { ctx, log } = this.#o
    const { name } = job.record
    // The ring may have moved since the pass began: the new primary takes the file over.
    if (ctx.trackers.trackersOf(name)[0] !== ctx.roster.selfId) return true
    try {
      // The newest record from every replica: a put or another repair may have moved on since the snapshot.
      const fresh = await ctx.trackers.where(name, this.#stopping.signal)
      if (!fresh || compareRecords(fresh, job.record) !== 0) return true
      const { ok, missing, away, unknown } = job.assessment
      const result = await repairFile(ctx, job.record, ok, missing, { signal: this.#stopping.signal, throttle: this.#throttle })
      // Fully redundant only when nothing else is away or unknown; otherwise a later pass finishes the file.
      const whole = result.won && away.length === 0 && unknown.length === 0
      const since = this.#degradedSince.get(name)
      if (whole) {
        this.#degradedSince.delete(name)
        if (since !== undefined) this.#o.events.recovered((this.#o.clock.now() - since) / 1000)
      }
      log.info({ name, version: job.record.version, revision: result.record.revision, won: result.won, rebuilt: missing.length }, 'file repaired')
      return whole
    } catch (err) {
      if (!isHousePartyError(err, 'ERR_ABORTED')) log.warn({ name, err: (err as Error).message }, 'repair failed; retrying on the next pass')
      return false
    }
  }

  /**
   * Tracker handoff: every record goes to the guests that are now its
   * trackers; a record this peer no longer tracks is forgotten once another
   * tracker has it. Only records whose tracker set changed are sent.
   */
  async handOff(self: GuestId, guests: readonly GuestId[], signal = this.#stopping.signal): Promise<void> {
    const { ctx, records } = this.#o
    const batches = new Map<GuestId, FileRecord[]>()
    const pending: { name: string; key: string; targets: GuestId[]; mine: boolean }[] = []
    for (const record of records.list()) {
      const trackers = ctx.trackers.trackersOf(record.name, guests)
      const key = trackers.join(',')
      if (this.#pushed.get(record.name) === key) continue
      const targets = trackers.filter((t) => t !== self)
      for (const t of targets) batches.set(t, [...(batches.get(t) ?? []), record])
      pending.push({ name: record.name, key, targets, mine: trackers.includes(self) })
    }
    if (pending.length === 0) return
    const reached = new Set<GuestId>()
    await Promise.all(
      [...batches].map(async ([target, list]) => {
        try {
          await ctx.trackers.sync(target, list, signal)
          reached.add(target)
        } catch (err) {
          this.#o.log.debug({ target, err: (err as Error).message }, 'tracker handoff failed; retrying on the next pass')
        }
      }),
    )
    for (const p of pending) {
      if (p.targets.every((t) => reached.has(t))) this.#pushed.set(p.name, p.key)
      if (!p.mine && p.targets.some((t) => reached.has(t))) {
        records.forget(p.name)
        this.#pushed.delete(p.name)
      }
    }
    this.#o.log.debug({ records: pending.length, trackers: reached.size }, 'tracker records handed off')
  }

  /**
   * Census housekeeping for the names this peer is primary of: drops
   * fragments no record needs (superseded versions, extra copies, failed
   * puts), and turns fragments nobody tracks back into a record when the
   * trackers lost it.
   */
  async #tidy(census: Census, snapshot: readonly FileRecord[], guests: readonly GuestId[], presence: Presence): Promise<void> {
    const { ctx } = this.#o
    const self = ctx.roster.selfId
    const byName = new Map(snapshot.map((r) => [r.name, r]))
    const now = this.#o.clock.now()
    const old = (f: HeldFragment): boolean => now - f.stored > this.#o.settings.orphanGraceMs
    const orphans: { holder: GuestId; fragment: HeldFragment }[] = []
    const untracked = new Map<string, { holder: GuestId; fragment: HeldFragment }[]>()
    for (const copies of census.where.values()) {
      for (const copy of copies) {
        const { fragment } = copy
        if (ctx.trackers.trackersOf(fragment.name, guests)[0] !== self) continue
        const record = byName.get(fragment.name)
        if (!record || fragment.version > record.version) {
          if (!old(fragment)) continue
          const key = `${fragment.name}\u0000${fragment.version}`
          untracked.set(key, [...(untracked.get(key) ?? []), copy])
        } else if (fragment.version < record.version || record.deleted) {
          orphans.push(copy)
        } else {
          // An extra copy (a fragment rebuilt while its holder was away, which then came back) goes only once the record is whole.
          const ref = record.fragments.find((f) => f.index === fragment.index)
          const whole = () => assess(record, presence).ok.length === record.coding.k + record.coding.m
          if (ref && ref.holder !== copy.holder && guests.includes(ref.holder) && old(fragment) && whole()) orphans.push(copy)
        }
      }
    }
    for (const copies of untracked.values()) {
      const first = (copies[0] as { fragment: HeldFragment }).fragment
      const record = byName.get(first.name)
      const indices = new Set(copies.map((c) => c.fragment.index))
      // With no record here, fragments are never dropped: the record may be on its way from another replica.
      if (!record && indices.size >= first.coding.k) await this.#adopt(copies)
      else if (record) orphans.push(...copies)
    }
    await Promise.all(
      orphans.map(async ({ holder, fragment }) => {
        await dropFragments(ctx, fragment, [{ index: fragment.index, holder, digest: fragment.digest }])
        this.#o.events.orphanDropped()
      }),
    )
    if (orphans.length > 0) this.#o.log.info({ fragments: orphans.length }, 'dropped fragments no record needs')
  }

  /** Fragments of a file no tracker knows: rebuild its record from their manifests (unless a replica has it after all). */
  async #adopt(copies: { holder: GuestId; fragment: HeldFragment }[]): Promise<void> {
    const { ctx, log } = this.#o
    const first = (copies[0] as { fragment: HeldFragment }).fragment
    const known = await ctx.trackers.where(first.name, this.#stopping.signal).catch(() => undefined)
    if (known && known.version >= first.version) return
    const byIndex = new Map<number, FragmentRef>()
    for (const { holder, fragment } of copies)
      if (!byIndex.has(fragment.index)) byIndex.set(fragment.index, { index: fragment.index, holder, digest: fragment.digest })
    const record: FileRecord = {
      name: first.name,
      version: first.version,
      revision: 0,
      deleted: false,
      size: first.size,
      hash: first.hash,
      created: first.created,
      coding: first.coding,
      fragments: [...byIndex.values()].sort((a, b) => a.index - b.index),
    }
    await ctx.trackers.watch(record, this.#stopping.signal)
    this.#o.events.recordRebuilt()
    log.warn(
      { name: record.name, version: record.version, fragments: record.fragments.length },
      'rebuilt a lost tracker record from the manifests beside its fragments',
    )
  }

  /**
   * Moves a few fragments from the fullest guests to the emptiest (a guest
   * that just joined holds nothing). A fragment only moves to a guest that
   * holds nothing of its file, and is copied before it is dropped.
   */
  async #rebalance(census: Census, snapshot: readonly FileRecord[], presence: Presence): Promise<void> {
    const bytes = new Map<GuestId, number>()
    for (const [id, held] of census.held)
      bytes.set(
        id,
        held.reduce((n, f) => n + f.bytes, 0),
      )
    if (bytes.size < 2) return
    const mean = [...bytes.values()].reduce((a, b) => a + b, 0) / bytes.size
    let moves = this.#o.settings.rebalanceMoves
    const movable = snapshot.filter((r) => !r.deleted && assess(r, presence).ok.length === r.coding.k + r.coding.m)
    while (moves-- > 0) {
      const ranked = [...bytes].sort((a, b) => a[1] - b[1])
      const [low, lowBytes] = ranked[0] as [GuestId, number]
      const [high, highBytes] = ranked[ranked.length - 1] as [GuestId, number]
      if (lowBytes >= mean * 0.9 || highBytes <= mean * 1.1) return
      const gap = highBytes - lowBytes
      let best: { record: FileRecord; index: number; bytes: number } | undefined
      for (const record of movable) {
        if (record.fragments.some((f) => f.holder === low)) continue
        const ref = record.fragments.find((f) => f.holder === high)
        const held = ref && census.where.get(fragmentKey(record.name, record.version, ref.index))?.find((c) => c.holder === high)
        if (!ref || !held || held.fragment.bytes > gap / 2) continue
        if (!best || held.fragment.bytes > best.bytes) best = { record, index: ref.index, bytes: held.fragment.bytes }
      }
      if (!best) return
      try {
        const { won } = await moveFragment(this.#o.ctx, best.record, best.index, low, { signal: this.#stopping.signal, throttle: this.#throttle })
        if (!won) return
        this.#o.events.moved('rebalance')
        this.#o.log.info({ name: best.record.name, index: best.index, from: high, to: low, bytes: best.bytes }, 'fragment moved to even out the guests')
      } catch (err) {
        this.#o.log.warn({ name: best.record.name, err: (err as Error).message }, 'rebalance move failed')
        return
      }
      bytes.set(low, lowBytes + best.bytes)
      bytes.set(high, highBytes - best.bytes)
      const i = movable.indexOf(best.record)
      if (i >= 0) movable.splice(i, 1)
    }
  }
}
