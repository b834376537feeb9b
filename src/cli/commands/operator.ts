import { type Command, Option } from 'commander'
import { OPERATOR_SETTINGS, resolveOperatorConfig } from '../../operator/config.ts'
import type { RawSettings } from '../../shared/config.ts'
import { createLogger } from '../../shared/logger.ts'

/** `houseparty operator`: runs the operator in the foreground until SIGTERM/SIGINT (in a cluster, or with $KUBECONFIG). */
export function registerOperatorCommand(program: Command): void {
  const cmd = program.command('operator').description('run the House Party operator: HouseParty scaling and PartyCrasher experiments')
  for (const spec of OPERATOR_SETTINGS)
    cmd.addOption(new Option(`${spec.flag} <value>`, `${spec.description} [env ${spec.env}; default ${JSON.stringify(spec.default)}]`))
  cmd.action(async (opts: Record<string, unknown>) => {
    const flags: RawSettings = {}
    for (const spec of OPERATOR_SETTINGS) {
      const camel = spec.flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
      if (opts[camel] !== undefined) flags[spec.key] = opts[camel] as RawSettings[string]
    }
    const config = resolveOperatorConfig(flags)
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
