import { resolve } from 'node:path'
import type { Command } from 'commander'
import { HousePartyError } from '../../shared/errors.ts'
import { ALIAS_NAME, configPath, loadConfig, saveConfig } from '../aliases.ts'
import { table } from '../client.ts'
import { emit, note } from '../output.ts'

/** `houseparty alias`: saved peer addresses and tokens (like `mc alias`). */
export function registerAliasCommand(program: Command): void {
  const alias = program.command('alias').description(`saved peer addresses and tokens, used as --peer NAME (${configPath()})`)
  alias
    .command('set')
    .description('save (or replace) an alias; the first one saved becomes the default')
    .argument('<name>', 'alias name (letters, digits, - and _)')
    .argument('<url>', 'a peer API: http://host:port or host:port')
    .option('--token <token>', 'the API token to send with it')
    .option('--ca-file <file>', 'the CA certificate (PEM) to trust for it, for an https party with its own CA')
    .option('--default', 'make it the default (used when neither --peer nor HOUSEPARTY_PEER is given)')
    .action(async (name: string, url: string, opts: { token?: string; caFile?: string; default?: boolean }) => {
      if (!ALIAS_NAME.test(name))
        throw new HousePartyError('ERR_INVALID_ARGUMENT', `alias names are a letter then letters, digits, - or _: ${JSON.stringify(name)}`)
      if (!/^(https?:\/\/)?[^\s/]+(:\d+)?\/?$/.test(url)) throw new HousePartyError('ERR_INVALID_ARGUMENT', `not a peer API address: ${JSON.stringify(url)}`)
      const config = await loadConfig()
      config.aliases[name] = { url, ...(opts.token ? { token: opts.token } : {}), ...(opts.caFile ? { caFile: resolve(opts.caFile) } : {}) }
      if (opts.default || !config.default) config.default = name
      await saveConfig(config)
      note(`alias ${name} -> ${url}${config.default === name ? ' (default)' : ''}`)
    })
  alias
    .command('ls')
    .description('list the aliases (tokens are not shown)')
    .option('--json', 'print JSON (tokens left out)')
    .action(async (opts: { json?: boolean }) => {
      const config = await loadConfig()
      const rows = Object.entries(config.aliases).map(([name, a]) => ({ name, url: a.url, token: a.token !== undefined, default: config.default === name }))
      emit(opts, rows, (r) =>
        table(
          ['ALIAS', 'URL', 'TOKEN', 'DEFAULT'],
          r.map((a) => [a.name, a.url, a.token ? 'yes' : '', a.default ? '*' : '']),
        ),
      )
    })
  alias
    .command('rm')
    .description('remove an alias')
    .argument('<name>', 'alias name')
    .action(async (name: string) => {
      const config = await loadConfig()
      if (!config.aliases[name]) throw new HousePartyError('ERR_NOT_FOUND', `no alias ${JSON.stringify(name)}`)
      delete config.aliases[name]
      if (config.default === name) delete config.default
      await saveConfig(config)
      note(`removed alias ${name}`)
    })
}
