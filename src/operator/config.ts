import { hostname } from 'node:os'
import { type RawSettings, resolveSettings, type SettingSpec } from '../shared/config.ts'
import { HousePartyError } from '../shared/errors.ts'

/** How the operator runs. Flags beat environment variables beat these defaults (12-factor, for a Deployment). */
export interface OperatorConfig {
  /** The namespace whose HouseParty and PartyCrasher resources it serves (its own, in the chart). */
  namespace: string
  /** Its name in the leader Lease: the pod name in a Deployment. */
  identity: string
  leaseName: string
  leaseDurationMs: number
  /** /metrics and /healthz. */
  port: number
  /** How often a steady resource is looked at again, even with no event. */
  resyncMs: number
  logLevel: string
}

export const OPERATOR_SETTINGS: SettingSpec[] = [
  {
    key: 'namespace',
    flag: '--namespace',
    env: 'POD_NAMESPACE',
    kind: 'string',
    default: 'default',
    description: 'Namespace whose HouseParty and PartyCrasher resources this operator serves.',
  },
  { key: 'identity', flag: '--identity', env: 'POD_NAME', kind: 'string', default: '', description: 'Name in the leader Lease (default: the host name).' },
  {
    key: 'leaseName',
    flag: '--lease-name',
    env: 'HOUSEPARTY_OPERATOR_LEASE',
    kind: 'string',
    default: 'houseparty-operator',
    description: 'Lease that elects one acting replica.',
  },
  {
    key: 'leaseDurationMs',
    flag: '--lease-duration-ms',
    env: 'HOUSEPARTY_OPERATOR_LEASE_DURATION_MS',
    kind: 'int',
    default: 15000,
    description: 'A leader that has not renewed the Lease this long is replaced.',
  },
  { key: 'port', flag: '--port', env: 'HOUSEPARTY_OPERATOR_PORT', kind: 'int', default: 8080, description: 'Port of /metrics and /healthz.' },
  {
    key: 'resyncMs',
    flag: '--resync-ms',
    env: 'HOUSEPARTY_OPERATOR_RESYNC_MS',
    kind: 'int',
    default: 30000,
    description: 'A resource with nothing to do is looked at again after this long.',
  },
  { key: 'logLevel', flag: '--log-level', env: 'HOUSEPARTY_LOG_LEVEL', kind: 'string', default: 'info', description: 'pino log level.' },
]

export function resolveOperatorConfig(flags: RawSettings, env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  const config = resolveSettings(OPERATOR_SETTINGS, flags, env) as unknown as OperatorConfig
  if (config.identity === '') config.identity = hostname()
  if (config.leaseDurationMs < 3000) throw new HousePartyError('ERR_INVALID_CONFIG', '--lease-duration-ms must be at least 3000')
  if (config.resyncMs < 1000) throw new HousePartyError('ERR_INVALID_CONFIG', '--resync-ms must be at least 1000')
  return config
}
