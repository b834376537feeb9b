import { spawnSync } from 'node:child_process'

/** Why the kind e2e cannot run on this machine, or false when it can. */
export function kindUnavailable(): string | false {
  if (spawnSync('sh', ['-c', 'command -v kind']).status !== 0) return 'kind is not installed (the e2e-kind workflow installs it)'
  if (spawnSync('docker', ['info'], { stdio: 'ignore' }).status !== 0) return 'no Docker engine to run kind on (the e2e-kind workflow has one)'
  return false
}
