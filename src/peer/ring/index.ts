export { freshRingId, type RingId, randomRingId, rendezvousRank, ringPosition, successors } from './ring.ts'
