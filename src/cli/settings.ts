import { type Command, Option } from 'commander'
import type { RawSettings, SettingSpec } from '../shared/config.ts'

/** One flag per setting, its help naming the environment variable and the default. */
export function addSettingOptions(cmd: Command, specs: readonly SettingSpec[]): void {
  for (const spec of specs) {
    const flag = spec.kind === 'bool' ? `${spec.flag} [bool]` : spec.kind === 'list' ? `${spec.flag} <value...>` : `${spec.flag} <value>`
    cmd.addOption(new Option(flag, `${spec.description} [env ${spec.env}; default ${JSON.stringify(spec.default)}]`))
  }
}

/** The settings given as flags, keyed by setting key (what resolveSettings takes). */
export function settingsFromOptions(specs: readonly SettingSpec[], opts: Record<string, unknown>): RawSettings {
  const flags: RawSettings = {}
  for (const spec of specs) {
    const camel = spec.flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
    const v = opts[camel]
    if (v !== undefined) flags[spec.key] = v as RawSettings[string]
  }
  return flags
}
