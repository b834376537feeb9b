import { type DomainPath, type DomainsOf, domainPath, pickWithinDomains } from './domains.ts'
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

export interface HolderRequest {
  /** Guests that may take a fragment. */
  candidates: readonly RingId[]
  name: string
  /** Fragments to place. */
  count: number
  /** Fragments of the file that may be lost (m): no domain should hold more. */
  tolerate: number
  /** Bytes of one fragment (0: unknown). */
  share: number
  load: PlacementLoad
  /** Each guest's failure domains. */
  domains: DomainsOf
  /** Guests already holding fragments of the file (a repair or a move): their domains count against the rule. */
  placed?: readonly RingId[]
  /**
   * A guest to take a fragment first while it holds no more than a little
   * above the average (PREFER_SLACK): the peer coding a small file, whose own
   * fragment costs no call. Past that it is ranked as any other, so a client
   * that puts everything through one peer fills it no further than the rest.
   */
  prefer?: RingId
}

/** How far above the average guest's bytes a preferred guest still comes first: well inside the band where recovery evens guests out. */
export const PREFER_SLACK = 1.05

/**
 * Where a file's fragments go: every candidate, best first (the first
 * `count` hold it; the rest are fallbacks if one of those cannot take a
 * fragment).
 *
 * First the failure domains: no region, zone or node holds more fragments
 * of the file than it must (see pickWithinDomains: losing any one domain
 * loses as few as the party's domains allow, at most m wherever they can).
 * Within that rule, small files go where rendezvous hashing puts them: that
 * spreads fragment counts evenly and needs no coordination. But hashing
 * alone does not spread bytes when sizes are heavy-tailed (a few large files
 * land wherever they hash), so a file whose fragments are worth at least 1%
 * of an average guest's bytes prefers the least-loaded guests instead (ties
 * broken by the hash ranking). Guests whose load is unknown count as average.
 */
export function chooseHolders(request: HolderRequest): RingId[] {
  const { candidates, name, count, share, load, domains } = request
  const ranked = holderRanking(candidates, name)
  const known = ranked.map((id) => load.held(id)).filter((x): x is number => x !== undefined)
  const mean = known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : 0
  let order = ranked
  if (share > 0 && share >= mean * 0.01) {
    const rank = new Map(ranked.map((id, i) => [id, i]))
    const held = (id: RingId): number => load.held(id) ?? mean
    order = [...ranked].sort((a, b) => held(a) - held(b) || (rank.get(a) ?? 0) - (rank.get(b) ?? 0))
  }
  const { prefer } = request
  const preferred = prefer !== undefined && order.includes(prefer) && (load.held(prefer) ?? Number.POSITIVE_INFINITY) <= mean * PREFER_SLACK
  if (preferred) order = [prefer, ...order.filter((id) => id !== prefer)]
  const pathOf = (id: RingId): DomainPath => domainPath(id, domains(id))
  return pickWithinDomains(order, pathOf, count, request.tolerate, (request.placed ?? []).map(pathOf))
}
