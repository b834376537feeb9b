import { readFileSync } from 'node:fs'
import { HousePartyError } from './errors.ts'
import { type OnStop, PEER_SETTINGS } from './peer-settings.ts'
import { type RawSettings, resolveSettings, setPath } from './settings.ts'

export { ON_STOP_VALUES, type OnStop, PEER_SETTINGS } from './peer-settings.ts'
export { type RawSettings, resolveSettings, type SettingSpec } from './settings.ts'

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
  if (c.key === undefined && !c.insecure) {
    bad('no party key: pass --key-file FILE (or HOUSEPARTY_KEY), or --insecure to run without authentication')
  }
  if (c.key !== undefined && c.insecure) bad('--insecure and a party key contradict each other')
  const m = c.membership
  if (m.suspectAfterMs < 2 * m.pingIntervalMs) bad('--suspect-after-ms must be at least twice --ping-interval-ms')
  const r = c.recovery
  if (r.censusIntervalMs !== 0 && r.censusIntervalMs < 500) bad('--census-interval-ms must be 0 or at least 500')
}

export function defaultMembershipTimings(): MembershipTimings {
  const out: Record<string, unknown> = {}
  for (const spec of PEER_SETTINGS) if (spec.key.startsWith('membership.')) setPath(out, spec.key, spec.default)
  return (out as { membership: MembershipTimings }).membership
}
