export { createPeerMetrics, type PeerMetrics } from './metrics.ts'
