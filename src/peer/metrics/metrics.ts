import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import { MEMBERSHIP_EVENTS } from '../membership/index.ts'
import { DROP_REASONS } from '../net/index.ts'
import { MESSAGE_TYPES } from '../protocol/index.ts'

/**
 * Every metric a peer exports, on its own Registry (never the global one, so
 * several peers can live in one test process). Names carry the houseparty_
 * prefix and their unit; labels are bounded sets.
 */
/** Live figures the metrics read at scrape time; the peer plugs its store and tracker in. */
export interface MetricProbes {
  store: () => { files: number; fragments: number; bytes: number }
  trackedFiles: () => number
  /** This peer's own event-loop lag as membership measures it (ms). */
  lagMs: () => number
}

export function createPeerMetrics(
  registry = new Registry(),
  probes: MetricProbes = { store: () => ({ files: 0, fragments: 0, bytes: 0 }), trackedFiles: () => 0, lagMs: () => 0 },
) {
  // The event-loop delay histogram samples every 100 ms rather than prom-client's 10 ms: a timer
  // that wakes an idle peer 100 times a second cost it about an eighth of its idle CPU.
  collectDefaultMetrics({ register: registry, prefix: 'houseparty_process_', eventLoopMonitoringPrecision: 100 })
  // prom-client names three gauges as counters (…_total). They only sum the per-type gauges it also exports
  // (houseparty_process_nodejs_active_handles{type}, …), so they go, and `promtool check metrics` stays clean.
  for (const what of ['handles', 'requests', 'resources']) registry.removeSingleMetric(`houseparty_process_nodejs_active_${what}_total`)
  const m = {
    registry,
    guests: new Gauge({ name: 'houseparty_guests', help: "Guests on this peer's guest list (0 while not admitted).", registers: [registry] }),
    epoch: new Gauge({ name: 'houseparty_membership_epoch', help: "Epoch of this peer's guest list.", registers: [registry] }),
    admitted: new Gauge({ name: 'houseparty_admitted', help: '1 once this peer is a guest of the party.', registers: [registry] }),
    membershipEvents: new Counter({
      name: 'houseparty_membership_events_total',
      help: 'Membership events seen by this peer (admitted, guest_added, guest_removed, suspected, vote_dead, ...).',
      labelNames: ['event'],
      registers: [registry],
    }),
    eventLoopLag: new Gauge({
      name: 'houseparty_event_loop_lag_seconds',
      help: "The worst lateness of this peer's membership ticks over the last 10 s, pauses left out: every guest stretches its timeouts by it.",
      registers: [registry],
      collect() {
        this.set(probes.lagMs() / 1000)
      },
    }),
    datagramsSent: new Counter({
      name: 'houseparty_udp_messages_sent_total',
      help: 'UDP protocol messages sent, by type.',
      labelNames: ['type'],
      registers: [registry],
    }),
    datagramsReceived: new Counter({
      name: 'houseparty_udp_messages_received_total',
      help: 'Authenticated, valid UDP protocol messages received, by type.',
      labelNames: ['type'],
      registers: [registry],
    }),
    datagramsDropped: new Counter({
      name: 'houseparty_udp_datagrams_dropped_total',
      help: 'Datagrams dropped, by reason: too_short, too_large, magic, version, mac, stale, replayed, json, schema, unexpected.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    deathDetection: new Histogram({
      name: 'houseparty_death_detection_seconds',
      help: 'Silence of a guest from the last word heard to it being declared dead by ping-vote.',
      buckets: [0.5, 0.75, 1, 1.25, 1.5, 2, 3, 5, 10],
      registers: [registry],
    }),
    filesHeld: new Gauge({
      name: 'houseparty_files_held',
      help: 'Files with at least one fragment on this peer.',
      registers: [registry],
      collect() {
        this.set(probes.store().files)
      },
    }),
    fragmentsHeld: new Gauge({
      name: 'houseparty_fragments_held',
      help: 'Fragments stored on this peer.',
      registers: [registry],
      collect() {
        this.set(probes.store().fragments)
      },
    }),
    bytesHeld: new Gauge({
      name: 'houseparty_fragment_bytes_held',
      help: 'Bytes of fragments stored on this peer.',
      registers: [registry],
      collect() {
        this.set(probes.store().bytes)
      },
    }),
    trackedFiles: new Gauge({
      name: 'houseparty_tracked_files',
      help: 'Tracker records (files and tombstones) kept by this peer.',
      registers: [registry],
      collect() {
        this.set(probes.trackedFiles())
      },
    }),
    transferBytes: new Counter({
      name: 'houseparty_transfer_bytes_total',
      help: 'Fragment bytes moved over TCP by this peer as holder: in (holdMyPint received) or out (fragments served).',
      labelNames: ['direction'],
      registers: [registry],
    }),
    transferSeconds: new Histogram({
      name: 'houseparty_transfer_seconds',
      help: 'Duration of fragment transfers served by this peer, by op (hold, fetch).',
      labelNames: ['op'],
      buckets: [0.005, 0.02, 0.1, 0.5, 1, 2.5, 5, 10, 30, 120],
      registers: [registry],
    }),
    authFailures: new Counter({
      name: 'houseparty_auth_failures_total',
      help: 'Requests refused for a missing or wrong credential, by API (files: the bearer token; s3: an unknown key or a bad signature).',
      labelNames: ['api'] as const,
      registers: [registry],
    }),
    authThrottled: new Counter({
      name: 'houseparty_auth_throttled_total',
      help: 'Requests refused without looking at their credential, from a source that failed to authenticate too often (429 / SlowDown), by API.',
      labelNames: ['api'] as const,
      registers: [registry],
    }),
    s3Requests: new Counter({
      name: 'houseparty_s3_requests_total',
      help: 'S3 requests answered, by operation (GetObject, PutObject, ...) and S3 status code ("OK" or the error code).',
      labelNames: ['op', 'code'],
      registers: [registry],
    }),
    s3Seconds: new Histogram({
      name: 'houseparty_s3_request_duration_seconds',
      help: 'Time from an S3 request to the end of its answer, by operation.',
      labelNames: ['op'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    putSeconds: new Histogram({
      name: 'houseparty_put_seconds',
      help: 'Duration of file puts coordinated by this peer, by outcome.',
      labelNames: ['outcome'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120, 600],
      registers: [registry],
    }),
    getSeconds: new Histogram({
      name: 'houseparty_get_seconds',
      help: 'Duration of file gets served by this peer, by outcome.',
      labelNames: ['outcome'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120, 600],
      registers: [registry],
    }),
    fileBytes: new Counter({
      name: 'houseparty_file_bytes_total',
      help: 'File bytes put and got through this peer, by op.',
      labelNames: ['op'],
      registers: [registry],
    }),
    fragmentsSkipped: new Counter({
      name: 'houseparty_fragments_skipped_total',
      help: 'Fragments a read could not use, by reason: corrupt (checksum mismatch) or unreachable.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    fragmentsRebuilt: new Counter({
      name: 'houseparty_fragments_rebuilt_total',
      help: 'Fragments rebuilt from the others, stored anew and recorded.',
      registers: [registry],
    }),
    fragmentsRebuiltDiscarded: new Counter({
      name: 'houseparty_fragments_rebuilt_discarded_total',
      help: 'Fragments rebuilt, then dropped because another change of the record won (two peers repaired one file while the ring moved).',
      registers: [registry],
    }),
    rebuiltBytes: new Counter({
      name: 'houseparty_rebuilt_bytes_total',
      help: 'Bytes of rebuilt fragments written, kept or discarded.',
      registers: [registry],
    }),
    tcpRequests: new Counter({
      name: 'houseparty_tcp_requests_total',
      help: 'Authenticated data-plane requests served, by op.',
      labelNames: ['op'],
      registers: [registry],
    }),
    tcpRejected: new Counter({
      name: 'houseparty_tcp_requests_rejected_total',
      help: 'Data-plane connections refused before any work, by reason: frame, mac, stale, replayed, json, schema.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    filesPrimary: new Gauge({
      name: 'houseparty_files_primary',
      help: 'Files this peer is primary tracker of, as of its last recovery pass: summed over the party, every file once.',
      registers: [registry],
    }),
    filesDegraded: new Gauge({
      name: 'houseparty_files_degraded',
      help: 'Files this peer is primary tracker of with fewer than k+m usable fragments (lost ones included), as of its last recovery pass.',
      registers: [registry],
    }),
    filesLost: new Gauge({
      name: 'houseparty_files_lost',
      help: 'Files this peer is primary tracker of with fewer than k usable fragments: unreadable until a holder comes back.',
      registers: [registry],
    }),
    filesAtRisk: new Gauge({
      name: 'houseparty_files_at_risk',
      help: 'Readable files this peer is primary tracker of that the loss of the worst single node, zone or region (label domain) would make unreadable, as of its last full census. 0: losing any one such domain loses no file.',
      labelNames: ['domain'] as const,
      registers: [registry],
    }),
    recoverySeconds: new Histogram({
      name: 'houseparty_recovery_seconds',
      help: 'From a file first seen degraded (a death declared, a fragment found missing) to its redundancy restored.',
      buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800],
      registers: [registry],
    }),
    fragmentsMoved: new Counter({
      name: 'houseparty_fragments_moved_total',
      help: 'Fragments copied to another guest and dropped here or there, by reason: leave (graceful handoff), rebalance.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    orphansDropped: new Counter({
      name: 'houseparty_orphan_fragments_dropped_total',
      help: 'Fragments no record needed (superseded, extra copies, failed puts) that this peer had deleted.',
      registers: [registry],
    }),
    censusParts: new Counter({
      name: 'houseparty_census_parts_total',
      help: 'Parts of arcs compared by digest in recovery censuses (result="compared"), and those whose digests differed (result="differing"), so that the holder listed its fragments there.',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    censusRecordsRead: new Counter({
      name: 'houseparty_census_records_read_total',
      help: 'Tracker records recovery passes read: every record of the arc (pass="full": after a view change, or when something was left waiting), or only those that changed and those where a guest differed (pass="changes").',
      labelNames: ['pass'] as const,
      registers: [registry],
    }),
    censusListed: new Counter({
      name: 'houseparty_census_fragments_listed_total',
      help: 'Fragments guests listed to this peer in recovery censuses, for parts whose digests differed: grows with changes, not with the files held.',
      registers: [registry],
    }),
    dropsRefused: new Counter({
      name: 'houseparty_fragment_drops_refused_total',
      help: 'Drops of a fragment this peer refused because the newest record counts on that very copy (asked by a peer whose records had missed changes).',
      registers: [registry],
    }),
    fragmentsReadopted: new Counter({
      name: 'houseparty_fragments_readopted_total',
      help: 'Fragments found on a live guest other than the one recorded (the very same fragment) and recorded there instead of being rebuilt.',
      registers: [registry],
    }),
    recordsHanded: new Counter({
      name: 'houseparty_tracker_records_handed_total',
      help: 'Tracker records a handoff sent to other trackers (way="sent") or took from them, newer than its own (way="taken").',
      labelNames: ['way'],
      registers: [registry],
    }),
    recordsRebuilt: new Counter({
      name: 'houseparty_tracker_records_rebuilt_total',
      help: 'Tracker records rebuilt from the manifests of the fragments after every replica lost them.',
      registers: [registry],
    }),
    scrubbedBytes: new Counter({ name: 'houseparty_scrubbed_bytes_total', help: 'Bytes of fragments re-read and checked by scrub.', registers: [registry] }),
    scrubCorrupt: new Counter({
      name: 'houseparty_scrub_corrupt_fragments_total',
      help: 'Fragments scrub found damaged and deleted (they are rebuilt from the others).',
      registers: [registry],
    }),
    scrubPassSeconds: new Gauge({ name: 'houseparty_scrub_last_pass_seconds', help: 'How long the last full scrub pass took.', registers: [registry] }),
    heapCollections: new Counter({
      name: 'houseparty_heap_collections_requested_total',
      help: 'Full collections of the JavaScript heap the peer asked for: its garbage passed --heap-slack-mb (reason="garbage"), or one that also compacts the heap and gives freed pages back to the system (reason="pages": at most every 10 s, in place of a due one or once the freed pages V8 kept passed --heap-slack-mb).',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
  }
  // Zero every labelled series up front so dashboards see 0 rather than nothing.
  for (const type of MESSAGE_TYPES) {
    m.datagramsSent.inc({ type }, 0)
    m.datagramsReceived.inc({ type }, 0)
  }
  for (const reason of DROP_REASONS) m.datagramsDropped.inc({ reason }, 0)
  for (const event of MEMBERSHIP_EVENTS) m.membershipEvents.inc({ event }, 0)
  for (const reason of ['tls', 'plain', 'frame', 'mac', 'stale', 'replayed', 'json', 'schema']) m.tcpRejected.inc({ reason }, 0)
  for (const reason of ['corrupt', 'unreachable']) m.fragmentsSkipped.inc({ reason }, 0)
  for (const direction of ['in', 'out']) m.transferBytes.inc({ direction }, 0)
  for (const reason of ['leave', 'rebalance', 'spread']) m.fragmentsMoved.inc({ reason }, 0)
  for (const domain of ['region', 'zone', 'node']) m.filesAtRisk.set({ domain }, 0)
  for (const reason of ['garbage', 'pages']) m.heapCollections.inc({ reason }, 0)
  for (const api of ['files', 's3']) {
    m.authFailures.inc({ api }, 0)
    m.authThrottled.inc({ api }, 0)
  }
  return m
}

export type PeerMetrics = ReturnType<typeof createPeerMetrics>
