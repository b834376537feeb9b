export {
  type Arc,
  ArcParts,
  BUCKETS,
  bucketOf,
  bucketRange,
  DIGEST_PARTS,
  differingParts,
  fingerprint,
  inArc,
  PartDigests,
  primaryArc,
  recordFingerprint,
  trackedArc,
} from './arcs.ts'
export { BucketDigests, type BucketTotals, type Member, membersIn } from './digests.ts'
export { chooseHolders, holderRanking, type PlacementLoad, trackersOf } from './placement.ts'
export { freshRingId, type RingId, randomRingId, rendezvousRank, ringKey, ringPosition, successors } from './ring.ts'
