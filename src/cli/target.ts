import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { HousePartyError } from '../shared/errors.ts'
import { ALIAS_NAME, loadConfig } from './aliases.ts'

/** The first peer of a local party (and a lone peer's default --api-port). */
export const LOCAL_PEER = '127.0.0.1:7480'

/** The options every command that talks to a party takes. */
export interface TargetOptions {
  peer?: string
  token?: string
  caFile?: string
  insecureSkipVerify?: boolean
  json?: boolean
}

/** Which peer to ask and with what token. */
export interface Target {
  /** Base URL of the peer's API, no trailing slash. */
  base: string
  /** How the user named it (an alias or an address), for messages. */
  label: string
  token: string | undefined
  /** PEM certificates to trust for an https peer, besides the system's. */
  ca?: string | undefined
  /** Do not check the peer's certificate at all (said loudly). */
  insecure?: boolean | undefined
}

export function withTarget(cmd: Command): Command {
  return cmd
    .option(
      '--peer <alias|host:port|url>',
      'peer API to ask: a saved alias or an address [env HOUSEPARTY_PEER; default: the default alias, else 127.0.0.1:7480]',
    )
    .option('--token <token>', 'API token, when the party requires one [env HOUSEPARTY_API_TOKEN; default: the alias’s]')
    .option('--ca-file <file>', 'PEM certificate(s) to trust for an https peer, besides the system CAs [env HOUSEPARTY_CA_FILE; default: the alias’s]')
    .option('--insecure-skip-verify', 'do not check an https peer’s certificate: anyone in between can read and change what is sent')
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
  const caFile = opts.caFile ?? env.HOUSEPARTY_CA_FILE ?? alias?.caFile
  const ca = caFile
    ? await readFile(caFile, 'utf8').catch((err: Error) => {
        throw new HousePartyError('ERR_INVALID_ARGUMENT', `cannot read --ca-file ${caFile}: ${err.message}`)
      })
    : undefined
  if (opts.insecureSkipVerify) process.stderr.write("houseparty: warning: --insecure-skip-verify: the peer's certificate is not checked\n")
  return {
    base: baseOf(address),
    label: asked ?? LOCAL_PEER,
    token: opts.token ?? env.HOUSEPARTY_API_TOKEN ?? alias?.token,
    ca,
    insecure: opts.insecureSkipVerify,
  }
}
