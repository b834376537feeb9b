import type { FileEvents } from './files/index.ts'
import type { PeerMetrics } from './metrics/index.ts'
import type { RecoveryEvents } from './recovery/index.ts'

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

/** What recovery reports, counted in the peer's metrics. */
export function recoveryEvents(metrics: PeerMetrics): RecoveryEvents {
  return {
    recovered: (seconds) => metrics.recoverySeconds.observe(seconds),
    moved: (reason) => metrics.fragmentsMoved.inc({ reason }),
    orphanDropped: () => metrics.orphansDropped.inc(),
    recordRebuilt: () => metrics.recordsRebuilt.inc(),
    readopted: () => metrics.fragmentsReadopted.inc(),
    census: ({ parts, differing, listed }) => {
      metrics.censusParts.inc({ result: 'compared' }, parts)
      metrics.censusParts.inc({ result: 'differing' }, differing)
      metrics.censusListed.inc(listed)
    },
    recordsRead: (pass, count) => metrics.censusRecordsRead.inc({ pass }, count),
    recordsHanded: (sent, taken) => {
      metrics.recordsHanded.inc({ way: 'sent' }, sent)
      metrics.recordsHanded.inc({ way: 'taken' }, taken)
    },
    health: (files, degraded, lost) => {
      metrics.filesPrimary.set(files)
      metrics.filesDegraded.set(degraded)
      metrics.filesLost.set(lost)
    },
    atRisk: (files) => {
      for (const [domain, count] of Object.entries(files)) metrics.filesAtRisk.set({ domain }, count)
    },
  }
}
