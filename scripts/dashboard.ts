import { writeFileSync } from 'node:fs'
import type { Dashboard, DataSourceRef, FieldConfigSource, Panel, VariableModel } from '@grafana/schema'

/**
 * The Grafana dashboard shipped with the chart, written here against
 * Grafana's own types (@grafana/schema) so a wrong field fails the type
 * check. `npm run dashboard` writes charts/houseparty/dashboards/houseparty.json;
 * a test fails when the checked-in file differs from what this makes, and
 * another runs every query against a real Prometheus scraping real peers.
 */
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax (the datasource the user picks), not a template literal.
const datasource: DataSourceRef = { type: 'prometheus', uid: '${datasource}' }
/** Every query is scoped to one party: its namespace and its peers' scrape job. */
const SEL = 'namespace=~"$namespace",job=~"$job"'

interface Query {
  expr: string
  legend: string
}

let nextId = 1
let y = 0

function panel(
  type: 'stat' | 'timeseries',
  title: string,
  description: string,
  queries: Query[],
  unit: string,
  size: { w: number; h: number; x: number },
  extra: Partial<Panel> = {},
): Panel {
  const fieldConfig: FieldConfigSource = { defaults: { unit }, overrides: [] }
  return {
    id: nextId++,
    type,
    title,
    description,
    datasource,
    gridPos: { w: size.w, h: size.h, x: size.x, y },
    fieldConfig,
    options: type === 'stat' ? { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: 'area' } : {},
    targets: queries.map((q, i) => ({ refId: String.fromCharCode(65 + i), datasource, expr: q.expr, legendFormat: q.legend })),
    ...extra,
  }
}

/** A row of panels of equal width, 24 columns wide (2, 3, 4, 6 or 8 panels). */
function row(h: number, panels: ((size: { w: number; h: number; x: number }) => Panel)[]): Panel[] {
  if (24 % panels.length !== 0) throw new Error(`a row of ${panels.length} panels does not divide 24 columns`)
  const w = 24 / panels.length
  const out = panels.map((make, i) => make({ w, h, x: i * w }))
  y += h
  return out
}

const stat =
  (title: string, description: string, expr: string, unit = 'short') =>
  (size: { w: number; h: number; x: number }) =>
    panel('stat', title, description, [{ expr, legend: title }], unit, size)
const series =
  (title: string, description: string, queries: Query[], unit = 'short') =>
  (size: { w: number; h: number; x: number }) =>
    panel('timeseries', title, description, queries, unit, size)

const panels: Panel[] = [
  ...row(4, [
    stat('Guests', 'Guests on the party list, as the peer that sees most of them says.', `max(houseparty_guests{${SEL}})`),
    stat('Files', 'Files in the party, summed over primary trackers: each file counted once.', `sum(houseparty_files_primary{${SEL}})`),
    stat(
      'Degraded files',
      'Files below k+m usable fragments, lost ones included. Summed over primary trackers: each file counted once.',
      `sum(houseparty_files_degraded{${SEL}})`,
    ),
    stat('Lost files', 'Files below k usable fragments: unreadable until a holder comes back.', `sum(houseparty_files_lost{${SEL}})`),
    stat('Bytes held', 'Bytes of fragments on all peers (k+m fragments per file).', `sum(houseparty_fragment_bytes_held{${SEL}})`, 'bytes'),
    stat(
      'Event-loop lag',
      'Worst lateness of a peer’s ticks over the last 10 s; every timeout stretches by it.',
      `max(houseparty_event_loop_lag_seconds{${SEL}})`,
      's',
    ),
  ]),
  ...row(8, [
    series('Guests per peer', 'Each peer’s guest list size: a peer that disagrees is catching up or cut off.', [
      { expr: `houseparty_guests{${SEL}}`, legend: '{{pod}}' },
    ]),
    series('Membership events', 'Joins, removals, suspicions and votes per second, over the whole party.', [
      { expr: `sum by (event) (rate(houseparty_membership_events_total{${SEL}}[$__rate_interval]))`, legend: '{{event}}' },
    ]),
  ]),
  ...row(8, [
    series('File health', 'Files at full redundancy (healthy), below it but readable (degraded), and below k fragments (lost).', [
      { expr: `sum(houseparty_files_primary{${SEL}}) - sum(houseparty_files_degraded{${SEL}})`, legend: 'healthy' },
      { expr: `sum(houseparty_files_degraded{${SEL}}) - sum(houseparty_files_lost{${SEL}})`, legend: 'degraded' },
      { expr: `sum(houseparty_files_lost{${SEL}})`, legend: 'lost' },
    ]),
    series(
      'Files at risk of one node or zone',
      'Readable files the loss of the worst single node (or zone) would make unreadable: fragments that share a domain more than the coding survives, or files already down to k. Each peer counts the files it tracks, worst domain first; the sum bounds the party’s figure (`houseparty health` gives it exactly). 0: losing any one node or zone loses no file.',
      [{ expr: `sum by (domain) (houseparty_files_at_risk{${SEL},domain=~"node|zone"})`, legend: '{{domain}}' }],
    ),
    series(
      'Bytes held per peer',
      'Fragment bytes on each peer: rebalancing evens them out.',
      [{ expr: `houseparty_fragment_bytes_held{${SEL}}`, legend: '{{pod}}' }],
      'bytes',
    ),
  ]),
  ...row(8, [
    series(
      'Puts and gets',
      'Puts coordinated and gets served per second, by outcome.',
      [
        { expr: `sum by (outcome) (rate(houseparty_put_seconds_count{${SEL}}[$__rate_interval]))`, legend: 'put {{outcome}}' },
        { expr: `sum by (outcome) (rate(houseparty_get_seconds_count{${SEL}}[$__rate_interval]))`, legend: 'get {{outcome}}' },
      ],
      'reqps',
    ),
    series(
      'Put and get latency',
      'p50 and p99 of whole-file puts and gets.',
      [
        { expr: `histogram_quantile(0.5, sum by (le) (rate(houseparty_put_seconds_bucket{${SEL}}[$__rate_interval])))`, legend: 'put p50' },
        { expr: `histogram_quantile(0.99, sum by (le) (rate(houseparty_put_seconds_bucket{${SEL}}[$__rate_interval])))`, legend: 'put p99' },
        { expr: `histogram_quantile(0.5, sum by (le) (rate(houseparty_get_seconds_bucket{${SEL}}[$__rate_interval])))`, legend: 'get p50' },
        { expr: `histogram_quantile(0.99, sum by (le) (rate(houseparty_get_seconds_bucket{${SEL}}[$__rate_interval])))`, legend: 'get p99' },
      ],
      's',
    ),
  ]),
  ...row(8, [
    series(
      'S3 requests',
      'S3 requests answered per second, by operation; errors by S3 code (NoSuchKey, SignatureDoesNotMatch, SlowDown, …).',
      [
        { expr: `sum by (op) (rate(houseparty_s3_requests_total{${SEL},code="OK"}[$__rate_interval]))`, legend: '{{op}}' },
        { expr: `sum by (code) (rate(houseparty_s3_requests_total{${SEL},code!="OK"}[$__rate_interval]))`, legend: 'error {{code}}' },
      ],
      'reqps',
    ),
    series(
      'S3 latency',
      'p50 and p99 of S3 requests, by operation.',
      [
        {
          expr: `histogram_quantile(0.5, sum by (le, op) (rate(houseparty_s3_request_duration_seconds_bucket{${SEL}}[$__rate_interval])))`,
          legend: '{{op}} p50',
        },
        {
          expr: `histogram_quantile(0.99, sum by (le, op) (rate(houseparty_s3_request_duration_seconds_bucket{${SEL}}[$__rate_interval])))`,
          legend: '{{op}} p99',
        },
      ],
      's',
    ),
  ]),
  ...row(8, [
    series(
      'File throughput',
      'File bytes put and got through the API.',
      [{ expr: `sum by (op) (rate(houseparty_file_bytes_total{${SEL}}[$__rate_interval]))`, legend: '{{op}}' }],
      'Bps',
    ),
    series(
      'Fragment transfer throughput',
      'Fragment bytes received (in) and served (out) by holders.',
      [{ expr: `sum by (direction) (rate(houseparty_transfer_bytes_total{${SEL}}[$__rate_interval]))`, legend: '{{direction}}' }],
      'Bps',
    ),
  ]),
  ...row(8, [
    series(
      'Recovery duration',
      'From a file first seen degraded to its redundancy restored.',
      [
        { expr: `histogram_quantile(0.5, sum by (le) (rate(houseparty_recovery_seconds_bucket{${SEL}}[$__rate_interval])))`, legend: 'p50' },
        { expr: `histogram_quantile(0.99, sum by (le) (rate(houseparty_recovery_seconds_bucket{${SEL}}[$__rate_interval])))`, legend: 'p99' },
      ],
      's',
    ),
    series(
      'Fragments rebuilt, moved, re-adopted',
      'Recovery work per second: rebuilt from the others, moved (leave, rebalance), re-adopted where found, and rebuilt twice (two peers repaired one file as the ring moved) then discarded.',
      [
        { expr: `sum(rate(houseparty_fragments_rebuilt_total{${SEL}}[$__rate_interval]))`, legend: 'rebuilt' },
        { expr: `sum by (reason) (rate(houseparty_fragments_moved_total{${SEL}}[$__rate_interval]))`, legend: 'moved ({{reason}})' },
        { expr: `sum(rate(houseparty_fragments_readopted_total{${SEL}}[$__rate_interval]))`, legend: 're-adopted' },
        { expr: `sum(rate(houseparty_fragments_rebuilt_discarded_total{${SEL}}[$__rate_interval]))`, legend: 'rebuilt twice, discarded' },
      ],
    ),
  ]),
  ...row(8, [
    series('Scrub', 'Bytes re-read and checked per second, and damaged fragments found.', [
      { expr: `sum(rate(houseparty_scrubbed_bytes_total{${SEL}}[$__rate_interval]))`, legend: 'scrubbed bytes/s' },
      { expr: `sum(increase(houseparty_scrub_corrupt_fragments_total{${SEL}}[$__rate_interval]))`, legend: 'damaged fragments' },
    ]),
    series(
      'Dropped datagrams and rejected connections',
      'Membership datagrams dropped and data-plane connections refused, by reason. "mac" means a wrong party key.',
      [
        { expr: `sum by (reason) (rate(houseparty_udp_datagrams_dropped_total{${SEL}}[$__rate_interval]))`, legend: 'udp {{reason}}' },
        { expr: `sum by (reason) (rate(houseparty_tcp_requests_rejected_total{${SEL}}[$__rate_interval]))`, legend: 'tcp {{reason}}' },
      ],
      'pps',
    ),
  ]),
  ...row(8, [
    series(
      'Death detection',
      'Silence of a guest from its last word to the vote that declared it dead.',
      [
        { expr: `histogram_quantile(0.5, sum by (le) (rate(houseparty_death_detection_seconds_bucket{${SEL}}[$__rate_interval])))`, legend: 'p50' },
        { expr: `histogram_quantile(0.99, sum by (le) (rate(houseparty_death_detection_seconds_bucket{${SEL}}[$__rate_interval])))`, legend: 'p99' },
      ],
      's',
    ),
    series(
      'Event-loop lag per peer',
      'A starved peer abstains from votes, and everyone gives it more time.',
      [{ expr: `houseparty_event_loop_lag_seconds{${SEL}}`, legend: '{{pod}}' }],
      's',
    ),
  ]),
  ...row(8, [
    series(
      'Anti-entropy: census and tracker handoff',
      'Per second: census parts compared by digest and those that differed, fragments listed where they differed, records a recovery pass read, and tracker records a handoff sent to other trackers or took from them. At rest only the parts compared move.',
      [
        { expr: `sum by (result) (rate(houseparty_census_parts_total{${SEL}}[$__rate_interval]))`, legend: 'census parts {{result}}' },
        { expr: `sum(rate(houseparty_census_fragments_listed_total{${SEL}}[$__rate_interval]))`, legend: 'fragments listed' },
        { expr: `sum by (pass) (rate(houseparty_census_records_read_total{${SEL}}[$__rate_interval]))`, legend: 'records read ({{pass}})' },
        { expr: `sum by (way) (rate(houseparty_tracker_records_handed_total{${SEL}}[$__rate_interval]))`, legend: 'tracker records {{way}}' },
      ],
    ),
  ]),
]

const variable = (name: string, label: string, query: string): VariableModel => ({
  type: 'query',
  name,
  label,
  datasource,
  query,
  refresh: 2,
  includeAll: true,
  multi: false,
  current: { text: 'All', value: '$__all' },
  options: [],
  skipUrlSync: false,
})

export const dashboard: Dashboard = {
  uid: 'houseparty',
  title: 'House Party',
  description: 'A House Party: guests, file health, traffic, recovery, scrub and failure detection.',
  tags: ['houseparty', 'storage'],
  timezone: 'browser',
  editable: true,
  graphTooltip: 1,
  schemaVersion: 39,
  version: 1,
  refresh: '30s',
  time: { from: 'now-1h', to: 'now' },
  templating: {
    list: [
      {
        type: 'datasource',
        name: 'datasource',
        label: 'Prometheus',
        query: 'prometheus',
        current: { text: 'default', value: 'default' },
        options: [],
        skipUrlSync: false,
      },
      variable('namespace', 'Namespace', 'label_values(houseparty_guests, namespace)'),
      variable('job', 'Party', 'label_values(houseparty_guests{namespace=~"$namespace"}, job)'),
    ],
  },
  annotations: { list: [] },
  panels,
}

/** The JSON the chart ships, as written by `npm run dashboard`. */
export function dashboardJson(): string {
  return `${JSON.stringify(dashboard, null, 2)}\n`
}

if (import.meta.main) writeFileSync(new URL('../charts/houseparty/dashboards/houseparty.json', import.meta.url), dashboardJson())
