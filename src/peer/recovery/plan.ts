import type { FileRecord, FragmentRef, GuestId, HeldFragment } from '../protocol/index.ts'
import type { DomainsOf } from '../ring/index.ts'
import { type Assessment, assess, holdsFragments, isWhole, type Presence } from './assess.ts'
import { type Census, type Copy, copiesOf } from './census.ts'
import { DUE_SLACK_MS, REBALANCE_HIGH, REBALANCE_LOW } from './constants.ts'
import { countRisk, type DomainRiskCounts, DomainView, keepsSpread, noRisk, planSpreadMoves } from './spread.ts'

/** A degraded file to rebuild: its record as planned, and what the census says of each fragment. */
export interface Repair {
  record: FileRecord
  assessment: Assessment
}

/** Fragments a record places where they are not, found on other live guests: the record is pointed at them. */
export interface Adoption {
  record: FileRecord
  found: FragmentRef[]
}

/** A fragment to copy elsewhere, then drop at its old place: to a domain its file lacks (`spread`), or from the fullest guest to the emptiest (`rebalance`). */
export interface Move {
  record: FileRecord
  index: number
  from: GuestId
  to: GuestId
  bytes: number
  reason: 'spread' | 'rebalance'
}

export interface PlanInput {
  /** The records this peer is primary tracker of. */
  records: readonly FileRecord[]
  /** Who is a guest, what the census found (if this pass took one), and when the fragments of absent holders may be rebuilt. */
  presence: Presence & { now: number }
  /** Whether this peer is the primary tracker of `name` on the current ring (tidying only touches those names). */
  isPrimary: (name: string) => boolean
  /** name → from when this peer may repair it (it took it over from a guest still there; see `ownership`). */
  repairFrom: ReadonlyMap<string, number>
  orphanGraceMs: number
  /** Fragments to move this pass to even out the guests (0: none). */
  rebalanceMoves: number
  /** Repair only files one more loss would lose (the others are counted in `deferred`): see Caretaker's full pass. */
  atRiskOnly?: boolean
  /** Where each guest runs (absent: every guest a domain of its own). */
  domains?: DomainsOf
}

export interface Plan {
  /** Fragments found on live guests: recorded there, nothing copied. */
  adoptions: Adoption[]
  /** Fragments of a file no tracker knows, enough to rebuild its record from their manifests. */
  restorations: Copy[][]
  /** Fragments no record needs: superseded versions, deleted files, extra copies, leftovers of failed puts. */
  drops: Copy[]
  /** Degraded files that can be repaired now, fewest surviving fragments first. */
  repairs: Repair[]
  /** Repairs left for later because they were not at risk (`atRiskOnly`). */
  deferred: number
  /** Only when nothing needs repairing: moves that spread files over domains as the party allows, then moves that even out the bytes the guests hold. */
  moves: Move[]
  /**
   * Files this peer is primary of (deleted ones left out), the names below k+m known-readable fragments, how many
   * are below k, and by domain how many readable files its loss alone would make unreadable.
   */
  health: { files: number; degraded: Set<string>; lost: number; atRisk: DomainRiskCounts }
  /** When a pass must run again: a file left to its previous primary settles, or an absent holder's rebuild delay ends. */
  wakeAt: number | undefined
}

/**
 * One recovery pass, decided: given the records, the census and who is
 * there, what to re-adopt, restore, drop, repair and move. Pure: the caller
 * carries the plan out (and a record whose change loses at the trackers is
 * simply looked at again on the next pass).
 *
 * Safety: a drop never touches a copy a record counts on. Copies are dropped
 * only when a newer version or a deletion superseded them, when they are an
 * extra copy of a file whose recorded fragments are all readable, or when
 * they are leftovers of a put that never got a record (a record of the name
 * exists, and it is older). Nothing of a file is dropped in a pass that
 * re-adopts any of its fragments.
 */
export function plan(input: PlanInput): Plan {
  const { presence } = input
  const adoptions = input.presence.census ? planAdoptions(input.records, input.presence.census, presence) : []
  const adopted = new Map(adoptions.map((a) => [a.record.name, readopted(a.record, a.found)]))
  const records = input.records.map((r) => adopted.get(r.name) ?? r)
  const { drops, restorations } = input.presence.census
    ? planTidy(input.presence.census, records, input, new Set(adopted.keys()))
    : { drops: [], restorations: [] }
  const view = new DomainView([...presence.guests], input.domains ?? (() => undefined))
  const { repairs: due, health, wakeAt } = planRepairs(records, input, view)
  const repairs = input.atRiskOnly ? due.filter((r) => margin(r) === 0) : due
  const census = input.presence.census
  const moves: Move[] = []
  if (due.length === 0 && census && input.rebalanceMoves > 0) {
    for (const move of planSpreadMoves(records, census, presence, view, input.rebalanceMoves)) moves.push({ ...move, reason: 'spread' })
    const spreading = new Set(moves.map((mv) => mv.record))
    moves.push(...planMoves(census, records, presence, input.rebalanceMoves - moves.length, view, spreading))
  }
  return { adoptions, restorations, drops, repairs, deferred: due.length - repairs.length, moves, health, wakeAt }
}

/** The record after re-adopting `found`: the next revision, with those fragments where they were found. */
export function readopted(record: FileRecord, found: readonly FragmentRef[]): FileRecord {
  const byIndex = new Map(found.map((f) => [f.index, f]))
  const fragments = record.fragments.map((f) => byIndex.get(f.index) ?? f)
  for (const f of found) if (!record.fragments.some((r) => r.index === f.index)) fragments.push(f)
  fragments.sort((a, b) => a.index - b.index)
  return { ...record, revision: record.revision + 1, fragments }
}

/**
 * Fragments the record places where they are not (a holder that is away,
 * silent, or answered without them) but that another live guest holds, the
 * very same (name, version, index, digest).
 */
function planAdoptions(records: readonly FileRecord[], census: Census, presence: Presence): Adoption[] {
  const out: Adoption[] = []
  for (const record of records) {
    if (!holdsFragments(record)) continue
    const a = assess(record, presence)
    const holders = new Set(record.fragments.map((f) => f.holder))
    const found: FragmentRef[] = []
    const elsewhere = a.missing.map((index) => record.fragments.find((f) => f.index === index) ?? { index, holder: '', digest: '' })
    for (const ref of [...a.away, ...a.unknown, ...elsewhere]) {
      const copy = copiesOf(census, record, ref.index).find(
        (c) => presence.guests.has(c.holder) && !holders.has(c.holder) && (ref.digest === '' || c.fragment.digest === ref.digest),
      )
      if (!copy) continue
      holders.add(copy.holder)
      found.push({ index: ref.index, holder: copy.holder, digest: copy.fragment.digest })
    }
    if (found.length > 0) out.push({ record, found })
  }
  return out
}

/** Census housekeeping for the names this peer is primary of: what to drop, and which lost records to restore. */
function planTidy(census: Census, records: readonly FileRecord[], input: PlanInput, adopting: ReadonlySet<string>): { drops: Copy[]; restorations: Copy[][] } {
  const { presence } = input
  const byName = new Map(records.map((r) => [r.name, r]))
  const old = (f: HeldFragment): boolean => presence.now - f.stored > input.orphanGraceMs
  const drops: Copy[] = []
  const untracked = new Map<string, Copy[]>()
  // Only listed copies can be dropped or restored: a vouched-for copy is exactly the one its record counts on.
  for (const copies of census.where.values()) {
    for (const copy of copies) {
      const { fragment } = copy
      if (adopting.has(fragment.name) || !input.isPrimary(fragment.name)) continue
      const record = byName.get(fragment.name)
      if (!record || fragment.version > record.version) {
        // Young: it may belong to a put or repair still running.
        if (!old(fragment)) continue
        const key = `${fragment.name}\u0000${fragment.version}`
        untracked.set(key, [...(untracked.get(key) ?? []), copy])
      } else if (fragment.version < record.version || record.deleted) {
        drops.push(copy)
      } else {
        // An extra copy (a fragment rebuilt while its holder was away, which then came back) goes only once the record is whole.
        const ref = record.fragments.find((f) => f.index === fragment.index)
        if (ref && ref.holder !== copy.holder && presence.guests.has(ref.holder) && old(fragment) && isWhole(record, presence)) drops.push(copy)
      }
    }
  }
  const restorations: Copy[][] = []
  for (const copies of untracked.values()) {
    const first = (copies[0] as Copy).fragment
    const record = byName.get(first.name)
    // With no record here, fragments are never dropped: the record may be on its way from another replica.
    if (!record && new Set(copies.map((c) => c.fragment.index)).size >= first.coding.k) restorations.push(copies)
    else if (record) drops.push(...copies)
  }
  return { drops, restorations }
}

/** Fragments a file can still lose and be read: 0 when one more loss would lose it. */
const margin = (r: Repair): number => r.assessment.ok.length - r.record.coding.k

/** Which files are degraded or lost, and which of them to repair now. */
function planRepairs(records: readonly FileRecord[], input: PlanInput, view: DomainView): Pick<Plan, 'repairs' | 'health' | 'wakeAt'> {
  const { presence } = input
  const { now } = presence
  const repairs: Repair[] = []
  const degraded = new Set<string>()
  let files = 0
  let lost = 0
  const atRisk = noRisk()
  let wakeAt: number | undefined
  const wake = (at: number): void => {
    wakeAt = Math.min(wakeAt ?? at, at)
  }
  for (const record of records) {
    if (!holdsFragments(record)) continue
    files++
    const assessment = assess(record, presence)
    const { k, m } = record.coding
    // A holder that is away comes back, or its fragments are rebuilt once the delay is over.
    if (assessment.nextDue !== undefined) wake(assessment.nextDue + DUE_SLACK_MS)
    countRisk(
      atRisk,
      view,
      record,
      assessment.ok.map((f) => f.holder),
    )
    if (assessment.ok.length >= k + m) continue
    degraded.add(record.name)
    if (assessment.ok.length < k) lost++
    if (assessment.missing.length === 0 || assessment.ok.length < k) continue
    const from = input.repairFrom.get(record.name) ?? 0
    if (now < from) wake(from)
    else repairs.push({ record, assessment })
  }
  repairs.sort((a, b) => margin(a) - margin(b))
  return { repairs, health: { files, degraded, lost, atRisk }, wakeAt }
}

/**
 * Moves from the fullest guests to the emptiest (a guest that just joined
 * holds nothing), until every guest is within the band around the mean. A
 * fragment only moves to a guest that holds nothing of its file, never more
 * than half the gap (so two guests never swap places), only from a file
 * whose fragments are all readable, and never to a guest that would spread
 * the file worse across failure domains.
 */
function planMoves(
  census: Census,
  records: readonly FileRecord[],
  presence: Presence,
  count: number,
  view: DomainView,
  spreading: ReadonlySet<FileRecord>,
): Move[] {
  const bytes = new Map(census.bytes)
  if (bytes.size < 2 || count <= 0) return []
  const mean = [...bytes.values()].reduce((a, b) => a + b, 0) / bytes.size
  const movable = records.filter((r) => !spreading.has(r) && holdsFragments(r) && isWhole(r, presence))
  const moves: Move[] = []
  while (moves.length < count) {
    const ranked = [...bytes].sort((a, b) => a[1] - b[1])
    const [low, lowBytes] = ranked[0] as [GuestId, number]
    const [high, highBytes] = ranked[ranked.length - 1] as [GuestId, number]
    if (lowBytes >= mean * REBALANCE_LOW || highBytes <= mean * REBALANCE_HIGH) break
    const gap = highBytes - lowBytes
    let best: Move | undefined
    for (const record of movable) {
      if (record.fragments.some((f) => f.holder === low)) continue
      const ref = record.fragments.find((f) => f.holder === high)
      const held = ref && copiesOf(census, record, ref.index).find((c) => c.holder === high)
      if (!ref || !held || held.fragment.bytes > gap / 2) continue
      if (best && held.fragment.bytes <= best.bytes) continue
      if (keepsSpread(view, record, high, low)) best = { record, index: ref.index, from: high, to: low, bytes: held.fragment.bytes, reason: 'rebalance' }
    }
    if (!best) break
    moves.push(best)
    bytes.set(low, lowBytes + best.bytes)
    bytes.set(high, highBytes - best.bytes)
    movable.splice(movable.indexOf(best.record), 1)
  }
  return moves
}

/**
 * From when this peer may repair each file it is primary of. One that became
 * primary while the previous primary is still a guest (a join moved the
 * ring) waits `settleMs`: a repair the previous primary already started
 * finishes and shows up at the trackers instead of being done twice. After a
 * death there is nobody to wait for. Only the names still waiting are kept
 * (a name missing may be repaired now): at a million files, one entry per
 * name would be kept between passes for nothing. Names no longer primary
 * here are forgotten.
 */
export function ownership(
  before: ReadonlyMap<string, number>,
  names: Iterable<string>,
  change: { self: GuestId; guests: readonly GuestId[]; previousPrimary: (name: string) => GuestId | undefined; now: number; settleMs: number },
): Map<string, number> {
  const out = new Map<string, number>()
  for (const name of names) {
    const known = before.get(name)
    if (known !== undefined) {
      if (known > change.now) out.set(name, known)
      continue
    }
    const previous = change.previousPrimary(name)
    const tookOverFromLiveGuest = previous === undefined || (previous !== change.self && change.guests.includes(previous))
    if (tookOverFromLiveGuest) out.set(name, change.now + change.settleMs)
  }
  return out
}
