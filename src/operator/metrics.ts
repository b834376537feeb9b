import { Counter, Gauge, Histogram, Registry } from 'prom-client'

/** The operator's own metrics, on its own registry (served at /metrics). */
export function createOperatorMetrics() {
  const registry = new Registry()
  const registers = [registry]
  return {
    registry,
    reconciles: new Counter({
      name: 'houseparty_operator_reconciles_total',
      help: 'Reconciles run, by resource kind and result (ok or error).',
      labelNames: ['kind', 'result'],
      registers,
    }),
    reconcileSeconds: new Histogram({
      name: 'houseparty_operator_reconcile_seconds',
      help: 'How long one reconcile took.',
      labelNames: ['kind'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers,
    }),
    decisions: new Counter({
      name: 'houseparty_operator_decisions_total',
      help: 'Decisions taken, by resource kind and action (Scale, DeleteClaim, Wait, Hold; StartRound, Crash, Recovered, ...).',
      labelNames: ['kind', 'action'],
      registers,
    }),
    lastDecision: new Gauge({
      name: 'houseparty_operator_last_decision_timestamp_seconds',
      help: 'When the last decision that changed something was taken, by resource and action.',
      labelNames: ['namespace', 'name', 'kind', 'action'],
      registers,
    }),
    leader: new Gauge({ name: 'houseparty_operator_leader', help: '1 while this replica holds the leader Lease and acts.', registers }),
    crashRounds: new Counter({
      name: 'houseparty_operator_crash_rounds_total',
      help: 'PartyCrasher rounds finished, by outcome (Recovered, TimedOut).',
      labelNames: ['outcome'],
      registers,
    }),
  }
}

export type OperatorMetrics = ReturnType<typeof createOperatorMetrics>
