import { type RingId, rendezvousRank, ringPosition, successors } from './ring.ts'

/**
 * Who tracks a file: the guest at or after the name's position on the ring,
 * then its successors as replicas.
 */
export function trackersOf(ids: readonly RingId[], name: string, replicas: number): RingId[] {
  return successors(ids, ringPosition(name), replicas)
}

/**
 * Who should hold a file's fragments, best first. Rendezvous hashing on the
 * name: every peer computes the same order, spreading fragments evenly, and
 * a join or departure only moves the files whose top choices changed.
 */
export function holderRanking(ids: readonly RingId[], name: string): RingId[] {
  return rendezvousRank(ids, name)
}

export interface PlacementLoad {
  /** Bytes a guest stores, if known. */
  held(id: RingId): number | undefined
}

/**
 * Where a file's fragments go: every guest, best first (the first `count`
 * hold it; the rest are fallbacks if one of those cannot take a fragment).
 *
 * Small files go where rendezvous hashing puts them: that spreads fragment
 * counts evenly and needs no coordination. But hashing alone does not spread
 * bytes when sizes are heavy-tailed (a few large files land wherever they
 * hash), so a file whose fragments are worth at least 1% of an average
 * guest's bytes goes to the least-loaded guests instead (ties broken by the
 * hash ranking). Guests whose load is unknown count as average.
 */
export function chooseHolders(ids: readonly RingId[], name: string, count: number, share: number, load: PlacementLoad): RingId[] {
  const ranked = holderRanking(ids, name)
  const known = ranked.map((id) => load.held(id)).filter((x): x is number => x !== undefined)
  const mean = known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : 0
  if (share === 0 || share < mean * 0.01) return ranked
  const rank = new Map(ranked.map((id, i) => [id, i]))
  const held = (id: RingId): number => load.held(id) ?? mean
  const lightest = [...ranked].sort((a, b) => held(a) - held(b) || (rank.get(a) ?? 0) - (rank.get(b) ?? 0))
  const chosen = lightest.slice(0, count)
  return [...chosen, ...ranked.filter((id) => !chosen.includes(id))]
}
