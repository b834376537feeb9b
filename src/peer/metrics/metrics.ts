import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import { DROP_REASONS } from '../net/index.ts'
import { MESSAGE_TYPES } from '../protocol/index.ts'

/**
 * Every metric a peer exports, on its own Registry (never the global one, so
 * several peers can live in one test process). Names carry the houseparty_
 * prefix and their unit; labels are bounded sets.
 */
export function createPeerMetrics(registry = new Registry()) {
  collectDefaultMetrics({ register: registry, prefix: 'houseparty_process_' })
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
  }
  // Zero every labelled series up front so dashboards see 0 rather than nothing.
  for (const type of MESSAGE_TYPES) {
    m.datagramsSent.inc({ type }, 0)
    m.datagramsReceived.inc({ type }, 0)
  }
  for (const reason of DROP_REASONS) m.datagramsDropped.inc({ reason }, 0)
  return m
}

export type PeerMetrics = ReturnType<typeof createPeerMetrics>
