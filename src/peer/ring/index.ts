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
export {
  type Caps,
  compareSpread,
  type DomainPath,
  type DomainsOf,
  domainName,
  domainPath,
  domainsLosing,
  LEVELS,
  type Level,
  pickWithinDomains,
  tightestCaps,
  worstLoss,
} from './domains.ts'
export { chooseHolders, type HolderRequest, holderRanking, type PlacementLoad, trackersOf } from './placement.ts'
export { freshRingId, type RingId, randomRingId, rendezvousRank, ringKey, ringPosition, successors } from './ring.ts'
