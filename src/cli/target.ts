import type { Command } from 'commander'
import { HousePartyError } from '../shared/errors.ts'
import { ALIAS_NAME, loadConfig } from './aliases.ts'

/** The first peer of a local party (and a lone peer's default --api-port). */
export const LOCAL_PEER = '127.0.0.1:7480'

/** The options every command that talks to a party takes. */
export interface TargetOptions {
  peer?: string
  token?: string
  json?: boolean
}

/** Which peer to ask and with what token. */
export interface Target {
  /** Base URL of the peer's API, no trailing slash. */
  base: string
  /** How the user named it (an alias or an address), for messages. */
  label: string
  token: string | undefined
}

export function withTarget(cmd: Command): Command {
  return cmd
    .option(
      '--peer <alias|host:port|url>',
      'peer API to ask: a saved alias or an address [env HOUSEPARTY_PEER; default: the default alias, else 127.0.0.1:7480]',
    )
    .option('--token <token>', 'API token, when the party requires one [env HOUSEPARTY_API_TOKEN; default: the alias’s]')
    .option('--json', 'print JSON instead of text')
}

function baseOf(address: string): string {
  return /^https?:\/\//.test(address) ? address.replace(/\/+$/, '') : `http://${address}`
}

/**
 * Flags win over the environment, which wins over the saved configuration:
 * --peer / HOUSEPARTY_PEER may name an alias or give an address; with
 * neither, the configuration's default alias, else the local party's first
 * peer. The token comes from --token, HOUSEPARTY_API_TOKEN, or the alias.
 */
export async function resolveTarget(opts: TargetOptions, env: NodeJS.ProcessEnv = process.env): Promise<Target> {
  const config = await loadConfig()
  const asked = opts.peer ?? env.HOUSEPARTY_PEER ?? config.default
  const alias = asked !== undefined && ALIAS_NAME.test(asked) && !asked.includes(':') ? config.aliases[asked] : undefined
  if (asked !== undefined && ALIAS_NAME.test(asked) && !asked.includes(':') && !alias && asked !== 'localhost') {
    throw new HousePartyError('ERR_INVALID_ARGUMENT', `no alias ${JSON.stringify(asked)}; see \`houseparty alias ls\`, or give host:port`)
  }
  const address = alias?.url ?? asked ?? LOCAL_PEER
  return { base: baseOf(address), label: asked ?? LOCAL_PEER, token: opts.token ?? env.HOUSEPARTY_API_TOKEN ?? alias?.token }
}
