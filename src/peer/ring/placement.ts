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
