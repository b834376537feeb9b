import type { Command } from 'commander'
import { OPERATOR_SETTINGS, resolveOperatorConfig } from '../../operator/config.ts'
import { createLogger } from '../../shared/logger.ts'
import { addSettingOptions, settingsFromOptions } from '../settings.ts'

/** `houseparty operator`: runs the operator in the foreground until SIGTERM/SIGINT (in a cluster, or with $KUBECONFIG). */
export function registerOperatorCommand(program: Command): void {
  const cmd = program.command('operator').description('run the House Party operator: HouseParty scaling and PartyCrasher experiments')
  addSettingOptions(cmd, OPERATOR_SETTINGS)
  cmd.action(async (opts: Record<string, unknown>) => {
    const config = resolveOperatorConfig(settingsFromOptions(OPERATOR_SETTINGS, opts))
    const log = createLogger({ level: config.logLevel, pretty: false, base: { component: 'operator' } })
    // Loaded here: the peer and the rest of the CLI never load the Kubernetes client.
    const [{ KubeConfig }, { Operator }] = await Promise.all([import('@kubernetes/client-node'), import('../../operator/operator.ts')])
    const kc = new KubeConfig()
    kc.loadFromDefault()
    const operator = new Operator(kc, config, log)
    process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'))
    let stopping = false
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.on(signal, () => {
        if (stopping) process.exit(1)
        stopping = true
        log.info({ signal }, 'stopping: giving the leader Lease up')
        void operator.stop().then(() => process.exit(0))
      })
    }
    await operator.start()
  })
}
