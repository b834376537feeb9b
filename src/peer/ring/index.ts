export { type Arc, ArcParts, BUCKETS, bucketOf, DIGEST_PARTS, differingParts, fingerprint, inArc, PartDigests, primaryArc, trackedArc } from './arcs.ts'
export { chooseHolders, holderRanking, type PlacementLoad, trackersOf } from './placement.ts'
export { freshRingId, type RingId, randomRingId, rendezvousRank, ringKey, ringPosition, successors } from './ring.ts'
