import { HousePartyError } from './errors.ts'

/**
 * A table of settings, each with one flag and one environment variable
 * (12-factor: Kubernetes sets env vars), a kind, bounds, a default and the
 * reason for that default. Values are parsed and checked against the table;
 * --help, the docs' configuration tables and the chart's values schema are
 * made from it.
 */
export type Kind = 'string' | 'int' | 'bool' | 'list'

export interface SettingSpec {
  /** Dotted path into PeerConfig. */
  key: string
  flag: string
  env: string
  kind: Kind
  default: string | number | boolean | string[]
  description: string
  /** For 'int': the least and greatest value accepted. */
  min?: number
  max?: number
  /** For 'string': the only values accepted. */
  choices?: readonly string[]
}

/** The value a setting of this spec resolves to: its kind's type, or one of its choices. */
type ValueOf<S extends SettingSpec> = S extends { choices: readonly (infer C)[] }
  ? C
  : S['kind'] extends 'int'
    ? number
    : S['kind'] extends 'bool'
      ? boolean
      : S['kind'] extends 'list'
        ? string[]
        : string

/** The first segment of a dotted key. */
type Head<K extends string> = K extends `${infer H}.${string}` ? H : K
/** The specs under `prefix.`, with that prefix taken off their keys. */
type Under<S extends SettingSpec, P extends string> = S extends { key: `${P}.${infer Rest}` } ? Omit<S, 'key'> & { key: Rest } : never

/**
 * The object a table of settings resolves to, derived from the table itself:
 * dotted keys nest, each leaf has its kind's type. A setting added to a table
 * is in its config type with nothing else to write.
 */
export type Resolved<S extends SettingSpec> = {
  -readonly [H in Head<S['key']>]: [Extract<S, { key: H }>] extends [never] ? Resolved<Under<S, H>> : ValueOf<Extract<S, { key: H }>>
}

export type RawSettings = Record<string, string | number | boolean | string[] | undefined>

function parseValue(spec: SettingSpec, raw: unknown): string | number | boolean | string[] {
  const bad = (why: string): never => {
    throw new HousePartyError('ERR_INVALID_CONFIG', `${spec.flag} / ${spec.env}: ${why}`)
  }
  const outOfBounds = (rule: string, got: unknown): never => {
    throw new HousePartyError('ERR_INVALID_CONFIG', `${spec.flag} must be ${rule} (${spec.env}), got ${JSON.stringify(got)}`)
  }
  switch (spec.kind) {
    case 'string': {
      const s = String(raw)
      if (spec.choices && !spec.choices.includes(s)) outOfBounds(`one of ${spec.choices.join(', ')}`, s)
      return s
    }
    case 'int': {
      const n = typeof raw === 'number' ? raw : Number(String(raw).trim())
      if (!Number.isInteger(n) || n < 0 || n > 2 ** 31) bad(`expected a whole number, got ${JSON.stringify(raw)}`)
      const { min = 0, max } = spec
      if (n < min || (max !== undefined && n > max)) outOfBounds(max === undefined ? `at least ${min}` : `${min}..${max}`, n)
      return n
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw
      const s = String(raw).trim().toLowerCase()
      if (['1', 'true', 'yes', 'on', ''].includes(s)) return true
      if (['0', 'false', 'no', 'off'].includes(s)) return false
      return bad(`expected true or false, got ${JSON.stringify(raw)}`)
    }
    case 'list': {
      const items = Array.isArray(raw) ? raw.flatMap((x) => String(x).split(',')) : String(raw).split(',')
      return items.map((s) => s.trim()).filter((s) => s !== '' && s.toLowerCase() !== 'none')
    }
  }
}

export function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.')
  let node = target
  for (const part of parts.slice(0, -1)) {
    node[part] ??= {}
    node = node[part] as Record<string, unknown>
  }
  node[parts.at(-1) as string] = value
}

/**
 * Merges flags over environment over defaults for a table of settings, each
 * parsed by its kind; dotted keys nest. `flags` holds only what was given on
 * the command line, keyed by setting key.
 */
export function resolveSettings<const T extends readonly SettingSpec[]>(specs: T, flags: RawSettings, env: NodeJS.ProcessEnv): Resolved<T[number]> {
  const cfg: Record<string, unknown> = {}
  for (const spec of specs) {
    const fromFlag = flags[spec.key]
    const fromEnv = env[spec.env]
    const raw = fromFlag !== undefined ? fromFlag : fromEnv !== undefined ? fromEnv : spec.default
    setPath(cfg, spec.key, parseValue(spec, raw))
  }
  // Every key of the table was set above, each parsed (and checked) by its kind: the object is what Resolved says.
  return cfg as Resolved<T[number]>
}
