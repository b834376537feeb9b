import { readFileSync } from 'node:fs'
import { HousePartyError } from './errors.ts'

/**
 * Everything a peer can be told, in one typed object. Each setting has one
 * flag and one environment variable (12-factor: Kubernetes sets env vars),
 * a default and the reason for that default. The CLI's --help and the
 * README's configuration table are made from PEER_SETTINGS.
 */
export interface PeerConfig {
  host: string
  advertiseHost: string
  port: number
  apiHost: string
  apiPort: number
  dataDir: string
  join: string[]
  foundIfAlone: boolean
  exitWithParent: boolean
  podName: string
  key: Buffer | undefined
  insecure: boolean
  logLevel: string
  logPretty: boolean
  apiToken: string
  coding: { k: number; m: number; stripeBytes: number }
  trackerReplicas: number
  transfer: TransferTimings
  membership: MembershipTimings
  recovery: RecoverySettings
  scrub: { intervalMs: number; bytesPerSecond: number }
  leaveGraceMs: number
  onStop: OnStop
}

export interface RecoverySettings {
  /** How often the census (what every guest holds) runs; view changes trigger a quick pass in between. */
  censusIntervalMs: number
  /** An unreferenced fragment younger than this may belong to a put or repair still running: it is left alone. */
  orphanGraceMs: number
  /** Files repaired at once. */
  concurrency: number
  /** Bytes per second that rebuilds and moves may read and write, all together (0: unlimited). */
  bytesPerSecond: number
  /** Fragments moved per census to even out the guests' bytes (0: no rebalancing). */
  rebalanceMoves: number
  /** How long the fragments of a guest that vanished without leaving wait before they are rebuilt elsewhere (0: at once). */
  rebuildDelayMs: number
}

/** --on-stop: what SIGTERM means for the peer's data (see src/peer/shutdown). */
export const ON_STOP_VALUES = ['auto', 'handoff', 'restart'] as const
export type OnStop = (typeof ON_STOP_VALUES)[number]

export interface TransferTimings {
  connectTimeoutMs: number
  idleTimeoutMs: number
}

export interface MembershipTimings {
  pingIntervalMs: number
  suspectAfterMs: number
  voteTimeoutMs: number
  proposalTimeoutMs: number
  joinTimeoutMs: number
  joinRetryMaxMs: number
  leaveTimeoutMs: number
}

type Kind = 'string' | 'int' | 'bool' | 'list'

export interface SettingSpec {
  /** Dotted path into PeerConfig. */
  key: string
  flag: string
  env: string
  kind: Kind
  default: string | number | boolean | string[]
  description: string
}

export const PEER_SETTINGS: SettingSpec[] = [
  {
    key: 'host',
    flag: '--host',
    env: 'HOUSEPARTY_HOST',
    kind: 'string',
    default: '127.0.0.1',
    description: 'Address to bind UDP membership and TCP transfer to.',
  },
  {
    key: 'advertiseHost',
    flag: '--advertise-host',
    env: 'HOUSEPARTY_ADVERTISE_HOST',
    kind: 'string',
    default: '',
    description: 'Address other guests reach this peer at (a pod IP or DNS name); defaults to --host, or the first non-internal IPv4 when --host is 0.0.0.0.',
  },
  {
    key: 'port',
    flag: '--port',
    env: 'HOUSEPARTY_PORT',
    kind: 'int',
    default: 7400,
    description: 'UDP port for membership; the same number on TCP carries fragments.',
  },
  {
    key: 'apiHost',
    flag: '--api-host',
    env: 'HOUSEPARTY_API_HOST',
    kind: 'string',
    default: '',
    description: 'Address the HTTP API binds to; defaults to --host.',
  },
  {
    key: 'apiPort',
    flag: '--api-port',
    env: 'HOUSEPARTY_API_PORT',
    kind: 'int',
    default: 7480,
    description: 'HTTP API port (files, guests, health, metrics).',
  },
  {
    key: 'dataDir',
    flag: '--data',
    env: 'HOUSEPARTY_DATA',
    kind: 'string',
    default: './houseparty-data',
    description: 'Directory for fragments and the peer identity.',
  },
  {
    key: 'join',
    flag: '--join',
    env: 'HOUSEPARTY_JOIN',
    kind: 'list',
    default: [],
    description: 'HOST:PORT of any guest (comma-separated, DNS names may resolve to many); "none" or empty founds a new party.',
  },
  {
    key: 'foundIfAlone',
    flag: '--found-if-alone',
    env: 'HOUSEPARTY_FOUND_IF_ALONE',
    kind: 'bool',
    default: false,
    description:
      'Found a new party when no --join address answers, unless the data dir was on a party before (it keeps knocking for that one). Off by default: a peer that cannot reach the party must not split it.',
  },
  {
    key: 'exitWithParent',
    flag: '--exit-with-parent',
    env: 'HOUSEPARTY_EXIT_WITH_PARENT',
    kind: 'bool',
    default: false,
    description: 'Leave the party when the process that started this peer exits (the local party launcher sets it, so no peer outlives it).',
  },
  {
    key: 'podName',
    flag: '--pod-name',
    env: 'HOUSEPARTY_POD_NAME',
    kind: 'string',
    default: '',
    description:
      "This peer's Kubernetes pod name (the downward API's metadata.name). With --found-if-alone, only a StatefulSet's first pod (a name ending in -0) may found a party, so a Service never gives two.",
  },
  {
    key: 'keyFile',
    flag: '--key-file',
    env: 'HOUSEPARTY_KEY_FILE',
    kind: 'string',
    default: '',
    description: 'File holding the party key that authenticates every datagram and transfer.',
  },
  {
    key: 'keyValue',
    flag: '--key',
    env: 'HOUSEPARTY_KEY',
    kind: 'string',
    default: '',
    description: 'The party key itself (prefer --key-file or a Kubernetes Secret).',
  },
  {
    key: 'insecure',
    flag: '--insecure',
    env: 'HOUSEPARTY_INSECURE',
    kind: 'bool',
    default: false,
    description: 'Run without a party key: anyone who can reach the ports can join. Logs a warning.',
  },
  {
    key: 'logLevel',
    flag: '--log-level',
    env: 'HOUSEPARTY_LOG_LEVEL',
    kind: 'string',
    default: 'info',
    description: 'pino level: trace, debug, info, warn, error, fatal, silent.',
  },
  {
    key: 'logPretty',
    flag: '--log-pretty',
    env: 'HOUSEPARTY_LOG_PRETTY',
    kind: 'bool',
    default: false,
    description: 'Readable log lines for a terminal instead of JSON.',
  },
  {
    key: 'apiToken',
    flag: '--api-token',
    env: 'HOUSEPARTY_API_TOKEN',
    kind: 'string',
    default: '',
    description: 'When set, the file API requires "Authorization: Bearer TOKEN" (health, readiness and metrics stay open).',
  },
  {
    key: 'coding.k',
    flag: '--data-fragments',
    env: 'HOUSEPARTY_DATA_FRAGMENTS',
    kind: 'int',
    default: 2,
    description: 'k: data fragments per file. Any k of the k+m fragments rebuild it. Applies to files this peer puts; set it the same on every peer.',
  },
  {
    key: 'coding.m',
    flag: '--parity-fragments',
    env: 'HOUSEPARTY_PARITY_FRAGMENTS',
    kind: 'int',
    default: 1,
    description: 'm: parity fragments per file, the number of holders that may die at once without loss. m = 1 is plain XOR; more is Reed-Solomon.',
  },
  {
    key: 'coding.stripeBytes',
    flag: '--stripe-bytes',
    env: 'HOUSEPARTY_STRIPE_BYTES',
    kind: 'int',
    default: 1048576,
    description:
      'Files are coded this many bytes at a time; each fragment gets one checksummed chunk per stripe. 1 MiB keeps memory small and checksums cheap.',
  },
  {
    key: 'trackerReplicas',
    flag: '--tracker-replicas',
    env: 'HOUSEPARTY_TRACKER_REPLICAS',
    kind: 'int',
    default: 3,
    description: "How many guests (the ring primary and its successors) keep each file's tracker record.",
  },
  {
    key: 'transfer.connectTimeoutMs',
    flag: '--connect-timeout-ms',
    env: 'HOUSEPARTY_CONNECT_TIMEOUT_MS',
    kind: 'int',
    default: 2000,
    description: 'How long to wait for another guest to accept a data-plane connection and answer it before trying the next one.',
  },
  {
    key: 'transfer.idleTimeoutMs',
    flag: '--transfer-timeout-ms',
    env: 'HOUSEPARTY_TRANSFER_TIMEOUT_MS',
    kind: 'int',
    default: 5000,
    description: 'A transfer that makes no progress this long is cut and continued from another guest.',
  },
  {
    key: 'recovery.censusIntervalMs',
    flag: '--census-interval-ms',
    env: 'HOUSEPARTY_CENSUS_INTERVAL_MS',
    kind: 'int',
    default: 30000,
    description:
      "How often each guest reads every guest's inventory to check the files it is primary tracker of: finds fragments lost on live guests, drops unneeded ones, rebalances. Deaths are handled at once, not on this timer.",
  },
  {
    key: 'recovery.orphanGraceMs',
    flag: '--orphan-grace-ms',
    env: 'HOUSEPARTY_ORPHAN_GRACE_MS',
    kind: 'int',
    default: 60000,
    description: 'A fragment no record points to is dropped only once it is this old (it may belong to a put or repair still running).',
  },
  {
    key: 'recovery.concurrency',
    flag: '--recovery-concurrency',
    env: 'HOUSEPARTY_RECOVERY_CONCURRENCY',
    kind: 'int',
    default: 2,
    description: 'Files each guest repairs at once (fewest surviving fragments first).',
  },
  {
    key: 'recovery.bytesPerSecond',
    flag: '--recovery-bytes-per-sec',
    env: 'HOUSEPARTY_RECOVERY_BYTES_PER_SEC',
    kind: 'int',
    default: 100 * 1024 * 1024,
    description: 'Bytes per second each guest may read for rebuilds, rebalancing and handoff, so puts and gets keep their share (0: unlimited).',
  },
  {
    key: 'recovery.rebalanceMoves',
    flag: '--rebalance-moves',
    env: 'HOUSEPARTY_REBALANCE_MOVES',
    kind: 'int',
    default: 8,
    description: 'Fragments each guest may move per census from the fullest guests to the emptiest, e.g. to a guest that just joined (0: never).',
  },
  {
    key: 'recovery.rebuildDelayMs',
    flag: '--rebuild-delay-ms',
    env: 'HOUSEPARTY_REBUILD_DELAY_MS',
    kind: 'int',
    default: 60000,
    description:
      'How long the fragments of a guest voted dead wait before they are rebuilt elsewhere. A paused or restarted peer (same data dir, kept identity) that returns within it costs no rebuild; a guest that left on purpose is rebuilt at once (0: always at once).',
  },
  {
    key: 'scrub.intervalMs',
    flag: '--scrub-interval-ms',
    env: 'HOUSEPARTY_SCRUB_INTERVAL_MS',
    kind: 'int',
    default: 6 * 3600 * 1000,
    description: 'How often each guest re-reads every fragment it holds and checks its checksums; a damaged one is deleted and rebuilt (0: never).',
  },
  {
    key: 'scrub.bytesPerSecond',
    flag: '--scrub-bytes-per-sec',
    env: 'HOUSEPARTY_SCRUB_BYTES_PER_SEC',
    kind: 'int',
    default: 20 * 1024 * 1024,
    description: 'Bytes per second a scrub may read.',
  },
  {
    key: 'leaveGraceMs',
    flag: '--leave-grace-ms',
    env: 'HOUSEPARTY_LEAVE_GRACE_MS',
    kind: 'int',
    default: 20000,
    description:
      "On SIGTERM, how long the peer spends handing its fragments and tracker records to others before it leaves (keep it under the pod's terminationGracePeriodSeconds). What is left is rebuilt by the others.",
  },
  {
    key: 'onStop',
    flag: '--on-stop',
    env: 'HOUSEPARTY_ON_STOP',
    kind: 'string',
    default: 'auto',
    description:
      "What SIGTERM means for this peer's data. handoff: leaving for good, so hand fragments and tracker records to the others first (--leave-grace-ms). restart: stepping out to come back on this data dir, so nothing moves and the party waits --rebuild-delay-ms before rebuilding. auto: in a StatefulSet pod, restart unless the set no longer counts this pod (a scale-down) or the set or the pod's volume claim is being deleted (it asks the API server; any doubt is a handoff); elsewhere, handoff.",
  },
  {
    key: 'membership.pingIntervalMs',
    flag: '--ping-interval-ms',
    env: 'HOUSEPARTY_PING_INTERVAL_MS',
    kind: 'int',
    default: 200,
    description: 'How often each guest pings every other guest. 200 ms keeps detection under 2 s at a few hundred datagrams a second per peer.',
  },
  {
    key: 'membership.suspectAfterMs',
    flag: '--suspect-after-ms',
    env: 'HOUSEPARTY_SUSPECT_AFTER_MS',
    kind: 'int',
    default: 1000,
    description: 'Silence after which a guest is suspected and a ping-vote starts: five missed pings, so a busy peer is not suspected for one slow tick.',
  },
  {
    key: 'membership.voteTimeoutMs',
    flag: '--vote-timeout-ms',
    env: 'HOUSEPARTY_VOTE_TIMEOUT_MS',
    kind: 'int',
    default: 450,
    description: 'How long voters try to ping a suspect (three attempts) before voting it dead.',
  },
  {
    key: 'membership.proposalTimeoutMs',
    flag: '--proposal-timeout-ms',
    env: 'HOUSEPARTY_PROPOSAL_TIMEOUT_MS',
    kind: 'int',
    default: 800,
    description: 'How long a coordinator waits for every guest to approve a change before aborting it.',
  },
  {
    key: 'membership.joinTimeoutMs',
    flag: '--join-timeout-ms',
    env: 'HOUSEPARTY_JOIN_TIMEOUT_MS',
    kind: 'int',
    default: 4000,
    description: 'How long a newcomer waits to be admitted before knocking again.',
  },
  {
    key: 'membership.joinRetryMaxMs',
    flag: '--join-retry-max-ms',
    env: 'HOUSEPARTY_JOIN_RETRY_MAX_MS',
    kind: 'int',
    default: 5000,
    description: 'Ceiling of the backoff between join attempts.',
  },
  {
    key: 'membership.leaveTimeoutMs',
    flag: '--leave-timeout-ms',
    env: 'HOUSEPARTY_LEAVE_TIMEOUT_MS',
    kind: 'int',
    default: 3000,
    description: 'How long a leaving peer waits for the party to confirm its removal.',
  },
]

export type RawSettings = Record<string, string | number | boolean | string[] | undefined>

function parseValue(spec: SettingSpec, raw: unknown): string | number | boolean | string[] {
  const bad = (why: string): never => {
    throw new HousePartyError('ERR_INVALID_CONFIG', `${spec.flag} / ${spec.env}: ${why}`)
  }
  switch (spec.kind) {
    case 'string':
      return String(raw)
    case 'int': {
      const n = typeof raw === 'number' ? raw : Number(String(raw).trim())
      if (!Number.isInteger(n) || n < 0 || n > 2 ** 31) bad(`expected a whole number, got ${JSON.stringify(raw)}`)
      return n
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw
      const s = String(raw).trim().toLowerCase()
      if (['1', 'true', 'yes', 'on', ''].includes(s)) return true
      if (['0', 'false', 'no', 'off'].includes(s)) return false
      return bad(`expected true or false, got ${JSON.stringify(raw)}`)
    }
    case 'list': {
      const items = Array.isArray(raw) ? raw.flatMap((x) => String(x).split(',')) : String(raw).split(',')
      return items.map((s) => s.trim()).filter((s) => s !== '' && s.toLowerCase() !== 'none')
    }
  }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.')
  let node = target
  for (const part of parts.slice(0, -1)) {
    node[part] ??= {}
    node = node[part] as Record<string, unknown>
  }
  node[parts.at(-1) as string] = value
}

/**
 * Merges flags over environment over defaults for a table of settings, each
 * parsed by its kind; dotted keys nest. `flags` holds only what was given on
 * the command line, keyed by setting key.
 */
export function resolveSettings(specs: readonly SettingSpec[], flags: RawSettings, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const cfg: Record<string, unknown> = {}
  for (const spec of specs) {
    const fromFlag = flags[spec.key]
    const fromEnv = env[spec.env]
    const raw = fromFlag !== undefined ? fromFlag : fromEnv !== undefined ? fromEnv : spec.default
    setPath(cfg, spec.key, parseValue(spec, raw))
  }
  return cfg
}

/** The peer's configuration: PEER_SETTINGS resolved (flags, then environment, then defaults), the key loaded, validated. */
export function resolvePeerConfig(flags: RawSettings, env: NodeJS.ProcessEnv = process.env): PeerConfig {
  const cfg = resolveSettings(PEER_SETTINGS, flags, env)
  const { keyFile, keyValue, ...rest } = cfg as Record<string, unknown> & { keyFile: string; keyValue: string }
  const config = rest as unknown as PeerConfig
  config.key = loadKey(keyFile, keyValue)
  if (config.apiHost === '') config.apiHost = config.host
  validatePeerConfig(config)
  return config
}

function loadKey(keyFile: string, keyValue: string): Buffer | undefined {
  if (keyFile !== '' && keyValue !== '') {
    throw new HousePartyError('ERR_INVALID_CONFIG', 'give the party key with --key-file or --key, not both')
  }
  let text = keyValue
  if (keyFile !== '') {
    try {
      text = readFileSync(keyFile, 'utf8')
    } catch (err) {
      throw new HousePartyError('ERR_INVALID_CONFIG', `cannot read --key-file ${keyFile}: ${(err as Error).message}`)
    }
  }
  text = text.trim()
  if (text === '') return undefined
  if (Buffer.byteLength(text) < 16) {
    throw new HousePartyError('ERR_INVALID_CONFIG', 'the party key must be at least 16 characters (houseparty keygen makes one)')
  }
  return Buffer.from(text, 'utf8')
}

export function validatePeerConfig(c: PeerConfig): void {
  const bad = (msg: string): never => {
    throw new HousePartyError('ERR_INVALID_CONFIG', msg)
  }
  for (const [name, port] of [
    ['--port', c.port],
    ['--api-port', c.apiPort],
  ] as const) {
    // Guests are told a fixed port, so 0 (any free port) cannot be advertised.
    if (port < 1 || port > 65535) bad(`${name} must be 1..65535`)
  }
  if (c.key === undefined && !c.insecure) {
    bad('no party key: pass --key-file FILE (or HOUSEPARTY_KEY), or --insecure to run without authentication')
  }
  if (c.key !== undefined && c.insecure) bad('--insecure and a party key contradict each other')
  const m = c.membership
  if (m.pingIntervalMs < 10) bad('--ping-interval-ms must be at least 10')
  if (m.suspectAfterMs < 2 * m.pingIntervalMs) bad('--suspect-after-ms must be at least twice --ping-interval-ms')
  if (m.voteTimeoutMs < 50) bad('--vote-timeout-ms must be at least 50')
  const { k, m: parity, stripeBytes } = c.coding
  if (k < 1 || k > 32) bad('--data-fragments must be 1..32')
  if (parity > 16) bad('--parity-fragments must be 0..16')
  if (stripeBytes < 4096 || stripeBytes > 64 * 1024 * 1024) bad('--stripe-bytes must be 4096..67108864')
  if (c.trackerReplicas < 1 || c.trackerReplicas > 16) bad('--tracker-replicas must be 1..16')
  if (c.transfer.connectTimeoutMs < 100) bad('--connect-timeout-ms must be at least 100')
  if (c.transfer.idleTimeoutMs < 1000) bad('--transfer-timeout-ms must be at least 1000')
  const r = c.recovery
  if (r.censusIntervalMs !== 0 && r.censusIntervalMs < 500) bad('--census-interval-ms must be 0 or at least 500')
  if (r.orphanGraceMs < 0) bad('--orphan-grace-ms must be at least 0')
  if (r.concurrency < 1 || r.concurrency > 64) bad('--recovery-concurrency must be 1..64')
  if (r.bytesPerSecond < 0) bad('--recovery-bytes-per-sec must be at least 0')
  if (r.rebalanceMoves < 0) bad('--rebalance-moves must be at least 0')
  if (c.scrub.intervalMs < 0) bad('--scrub-interval-ms must be at least 0')
  if (c.scrub.bytesPerSecond < 1024 * 1024) bad('--scrub-bytes-per-sec must be at least 1048576')
  if (c.leaveGraceMs < 0) bad('--leave-grace-ms must be at least 0')
  if (!(ON_STOP_VALUES as readonly string[]).includes(c.onStop)) bad(`--on-stop must be one of ${ON_STOP_VALUES.join(', ')}`)
}

export function defaultMembershipTimings(): MembershipTimings {
  const out: Record<string, unknown> = {}
  for (const spec of PEER_SETTINGS) if (spec.key.startsWith('membership.')) setPath(out, spec.key, spec.default)
  return (out as { membership: MembershipTimings }).membership
}
