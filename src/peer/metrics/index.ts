export { createPeerMetrics, type MetricProbes, type PeerMetrics } from './metrics.ts'
