import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { z } from 'zod'
import { HousePartyError } from '../shared/errors.ts'

/**
 * Saved peer addresses and tokens, like `mc alias`: `houseparty alias set
 * local http://127.0.0.1:7480 --token …`, then `--peer local`. The file
 * holds tokens, so it is written readable by its owner only.
 *
 * Where: $HOUSEPARTY_CONFIG, else $XDG_CONFIG_HOME/houseparty/config.json,
 * else ~/.config/houseparty/config.json.
 */
const Alias = z.object({
  url: z.string().min(1),
  token: z.string().optional(),
  /** PEM file of the CA that signed the peers' certificates (an https party with its own CA). */
  caFile: z.string().optional(),
})
const ConfigFile = z.object({
  aliases: z.record(z.string(), Alias).default({}),
  /** The alias used when neither --peer nor HOUSEPARTY_PEER says otherwise. */
  default: z.string().optional(),
})
export type Alias = z.infer<typeof Alias>
export type CliConfig = z.infer<typeof ConfigFile>

export const ALIAS_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HOUSEPARTY_CONFIG) return env.HOUSEPARTY_CONFIG
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'houseparty', 'config.json')
}

export async function loadConfig(path = configPath()): Promise<CliConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { aliases: {} }
    throw new HousePartyError('ERR_INVALID_CONFIG', `cannot read ${path}: ${(err as Error).message}`)
  }
  const parsed = ConfigFile.safeParse(
    (() => {
      try {
        return JSON.parse(text)
      } catch {
        return undefined
      }
    })(),
  )
  if (!parsed.success) throw new HousePartyError('ERR_INVALID_CONFIG', `${path} is not a House Party CLI configuration; fix or delete it`)
  return parsed.data
}

export async function saveConfig(config: CliConfig, path = configPath()): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 })
  await chmod(tmp, 0o600)
  await rename(tmp, path)
}
