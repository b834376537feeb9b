import type { FileEvents } from './files/index.ts'
import type { PeerMetrics } from './metrics/index.ts'

/** What the file operations report, counted in the peer's metrics. */
export function fileEvents(metrics: PeerMetrics): FileEvents {
  return {
    put: (seconds, bytes, outcome) => {
      metrics.putSeconds.observe({ outcome }, seconds)
      if (outcome === 'ok') metrics.fileBytes.inc({ op: 'put' }, bytes)
    },
    get: (seconds, bytes, outcome) => {
      metrics.getSeconds.observe({ outcome }, seconds)
      metrics.fileBytes.inc({ op: 'get' }, bytes)
    },
    fragmentSkipped: (reason) => metrics.fragmentsSkipped.inc({ reason }),
    fragmentsRebuilt: (count, bytes, kept) => {
      metrics.rebuiltBytes.inc(bytes)
      if (kept) metrics.fragmentsRebuilt.inc(count)
      else metrics.fragmentsRebuiltDiscarded.inc(count)
    },
  }
}
