import type { FileRecord, GuestId } from '../protocol/index.ts'
import {
  type Caps,
  chooseHolders,
  compareSpread,
  type DomainPath,
  type DomainsOf,
  domainPath,
  domainsLosing,
  type LEVELS,
  ringKey,
  tightestCaps,
  worstLoss,
} from '../ring/index.ts'
import { holdsFragments, isWhole, type Presence } from './assess.ts'
import { type Census, copiesOf } from './census.ts'

/**
 * Failure domains in recovery: which files sit worse across nodes and zones
 * than the party allows (and a fragment move that improves each), and how
 * many files the loss of each domain would make unreadable.
 */

/** A fragment to copy to a domain its file lacks, then drop at its old place. */
export interface SpreadMove {
  record: FileRecord
  index: number
  from: GuestId
  to: GuestId
  bytes: number
}

/** The guests' domains as one pass sees them; the best spread the party allows is worked out once per coding. */
export class DomainView {
  readonly #domains: DomainsOf
  readonly #guests: readonly GuestId[]
  readonly #paths = new Map<GuestId, DomainPath>()
  readonly #best = new Map<string, Caps>()

  constructor(guests: readonly GuestId[], domains: DomainsOf) {
    this.#guests = guests
    this.#domains = domains
  }

  pathOf(id: GuestId): DomainPath {
    let path = this.#paths.get(id)
    if (!path) {
      path = domainPath(id, this.#domains(id))
      this.#paths.set(id, path)
    }
    return path
  }

  /**
   * The least any file of this coding can lose to its worst region, zone
   * and node on this party: the caps placement keeps to are exactly what a
   * fresh placement reaches (each is the tightest the domains allow).
   */
  best(k: number, m: number): Caps {
    const key = `${k}+${m}`
    let caps = this.#best.get(key)
    if (!caps) {
      caps = tightestCaps(
        this.#guests.map((id) => this.pathOf(id)),
        [new Map(), new Map(), new Map()],
        k + m,
        m,
      )
      this.#best.set(key, caps)
    }
    return caps
  }

  spreadOf(holders: readonly GuestId[]): Caps {
    return worstLoss(holders.map((id) => this.pathOf(id)))
  }

  get domains(): DomainsOf {
    return this.#domains
  }

  get guests(): readonly GuestId[] {
    return this.#guests
  }
}

/**
 * Moves that bring files whose fragments share a domain more than they must
 * (placed when the party had fewer nodes or zones, or by a fallback when a
 * holder failed mid-put) to a better spread: one fragment per file and pass,
 * to the guest placement would choose given the file's other holders, and
 * only when that spreads the file strictly better. Only whole files move.
 */
export function planSpreadMoves(records: readonly FileRecord[], census: Census, presence: Presence, view: DomainView, count: number): SpreadMove[] {
  const moves: SpreadMove[] = []
  const answered = view.guests.filter((id) => census.answered.has(id))
  for (const record of records) {
    if (moves.length >= count) break
    if (!holdsFragments(record)) continue
    const { k, m } = record.coding
    const holders = record.fragments.map((f) => f.holder)
    const now = view.spreadOf(holders)
    if (compareSpread(now, view.best(k, m)) <= 0 || !isWhole(record, presence)) continue
    const candidates = answered.filter((id) => !holders.includes(id))
    let best: (SpreadMove & { spread: Caps }) | undefined
    for (const ref of record.fragments) {
      const others = holders.filter((h) => h !== ref.holder)
      const copy = copiesOf(census, record, ref.index).find((c) => c.holder === ref.holder)
      const bytes = copy?.fragment.bytes ?? 0
      const [to] = chooseHolders({
        candidates,
        name: record.name,
        count: 1,
        tolerate: m,
        share: bytes,
        load: { held: (id) => census.bytes.get(id) },
        domains: view.domains,
        placed: others,
      })
      if (!to) continue
      const spread = view.spreadOf([...others, to])
      if (compareSpread(spread, now) < 0 && (!best || compareSpread(spread, best.spread) < 0)) {
        best = { record, index: ref.index, from: ref.holder, to, bytes, spread }
      }
    }
    if (best) moves.push({ record: best.record, index: best.index, from: best.from, to: best.to, bytes: best.bytes })
  }
  return moves
}

/** Whether moving fragment `index` of `record` from `from` to `to` keeps the file spread at least as well across domains. */
export function keepsSpread(view: DomainView, record: FileRecord, from: GuestId, to: GuestId): boolean {
  const holders = record.fragments.map((f) => f.holder)
  const after = holders.map((h) => (h === from ? to : h))
  return compareSpread(view.spreadOf(after), view.spreadOf(holders)) <= 0
}

/** Files at risk per domain (by level: region, zone, node): those the loss of that domain alone would make unreadable. */
export type DomainRiskCounts = [Map<string, number>, Map<string, number>, Map<string, number>]

export const noRisk = (): DomainRiskCounts => [new Map(), new Map(), new Map()]

/** Counts `record` against each domain whose loss would leave fewer than k of its readable fragments (held by `readable`). */
export function countRisk(into: DomainRiskCounts, view: DomainView, record: FileRecord, readable: readonly GuestId[]): void {
  domainsLosing(
    readable.map((id) => view.pathOf(id)),
    record.coding.k,
  ).forEach((keys, level) => {
    for (const key of keys) into[level]?.set(key, (into[level]?.get(key) ?? 0) + 1)
  })
}

/** Adds `from` into `into`. */
export function addRisk(into: DomainRiskCounts, from: DomainRiskCounts): void {
  from.forEach((counts, level) => {
    for (const [key, files] of counts) into[level]?.set(key, (into[level]?.get(key) ?? 0) + files)
  })
}

/** The domain of one level whose loss alone would make the most files unreadable, and how many (undefined: none would). */
export function worstDomain(counts: Map<string, number>): [key: string, files: number] | undefined {
  let worst: [string, number] | undefined
  for (const entry of counts) if (!worst || entry[1] > worst[1]) worst = entry
  return worst
}

/** The files the worst single domain of each level would make unreadable. */
export function worstRisk(counts: DomainRiskCounts): Record<(typeof LEVELS)[number], number> {
  const most = (m: Map<string, number>): number => worstDomain(m)?.[1] ?? 0
  return { region: most(counts[0]), zone: most(counts[1]), node: most(counts[2]) }
}

/**
 * The guests and where they run, as one key: a pass that found nothing to do
 * is trusted again only while it is the same (a guest that comes back on
 * another node changes what the best spread is, not the ring).
 */
export function layoutKey(guests: readonly GuestId[], domains: DomainsOf): string {
  return `${ringKey(guests)}|${JSON.stringify(guests.map((id) => domains(id) ?? null))}`
}
