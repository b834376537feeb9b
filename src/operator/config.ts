import { hostname } from 'node:os'
import { type RawSettings, type Resolved, resolveSettings, type SettingSpec } from '../shared/config.ts'

/** How the operator runs. Flags beat environment variables beat these defaults (12-factor, for a Deployment). */
export const OPERATOR_SETTINGS = [
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
    min: 3000,
    description: 'A leader that has not renewed the Lease this long is replaced.',
  },
  { key: 'port', flag: '--port', env: 'HOUSEPARTY_OPERATOR_PORT', kind: 'int', default: 8080, description: 'Port of /metrics and /healthz.' },
  {
    key: 'resyncMs',
    flag: '--resync-ms',
    env: 'HOUSEPARTY_OPERATOR_RESYNC_MS',
    kind: 'int',
    default: 30000,
    min: 1000,
    description: 'A resource with nothing to do is looked at again after this long.',
  },
  { key: 'logLevel', flag: '--log-level', env: 'HOUSEPARTY_LOG_LEVEL', kind: 'string', default: 'info', description: 'pino log level.' },
] as const satisfies readonly SettingSpec[]

/** The operator's settings resolved: the namespace it serves, its name in the Lease (the pod name), the Lease, /metrics port, resync. */
export type OperatorConfig = Resolved<(typeof OPERATOR_SETTINGS)[number]>

export function resolveOperatorConfig(flags: RawSettings, env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  const config = resolveSettings(OPERATOR_SETTINGS, flags, env)
  if (config.identity === '') config.identity = hostname()
  return config
}
