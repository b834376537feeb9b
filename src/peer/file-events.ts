import type { FileEvents } from './files/index.ts'
import type { PeerMetrics } from './metrics/index.ts'
import type { RecoveryEvents, ScrubEvents } from './recovery/index.ts'
import type { TransferEvents } from './transfer/index.ts'

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

/** What the scrubber reports, counted. */
export function scrubEvents(metrics: PeerMetrics): ScrubEvents {
  return {
    scrubbed: (bytes) => metrics.scrubbedBytes.inc(bytes),
    corrupt: () => metrics.scrubCorrupt.inc(),
    passDone: (seconds) => metrics.scrubPassSeconds.set(seconds),
  }
}

/** Fragment bytes this peer's data-plane server took in and sent out, counted. */
export function transferEvents(metrics: PeerMetrics): TransferEvents {
  return {
    received: (bytes, seconds) => {
      metrics.transferBytes.inc({ direction: 'in' }, bytes)
      metrics.transferSeconds.observe({ op: 'hold' }, seconds)
    },
    sent: (bytes, seconds) => {
      metrics.transferBytes.inc({ direction: 'out' }, bytes)
      metrics.transferSeconds.observe({ op: 'fetch' }, seconds)
    },
    dropRefused: () => metrics.dropsRefused.inc(),
  }
}

/** The guest list as the metrics show it: how many guests, at which epoch, and whether this peer is one. */
export function viewMetrics(metrics: PeerMetrics, view: { guests: readonly unknown[]; epoch: number }): void {
  metrics.guests.set(view.guests.length)
  metrics.epoch.set(view.epoch)
  metrics.admitted.set(view.guests.length > 0 ? 1 : 0)
}
