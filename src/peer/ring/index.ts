export { chooseHolders, holderRanking, type PlacementLoad, trackersOf } from './placement.ts'
export { freshRingId, type RingId, randomRingId, rendezvousRank, ringPosition, successors } from './ring.ts'
