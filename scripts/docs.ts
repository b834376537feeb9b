import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { OPERATOR_SETTINGS } from '../src/operator/config.ts'
import { PEER_SETTINGS, type SettingSpec } from '../src/shared/config.ts'

/**
 * What is generated from the settings tables: the configuration tables in
 * docs/ and the chart's values.schema.json. `npm run docs` writes them; a
 * test fails when a checked-in copy differs from what this makes.
 */
const ROOT = resolve(import.meta.dirname, '..')

/** The env vars the chart's StatefulSet sets itself (from its own values or the pod): `config` may not set them again. */
export const CHART_MANAGED_ENV = new Set([
  'HOUSEPARTY_POD_NAME',
  'HOUSEPARTY_HOST',
  'HOUSEPARTY_API_HOST',
  'HOUSEPARTY_ADVERTISE_HOST',
  'HOUSEPARTY_PORT',
  'HOUSEPARTY_API_PORT',
  'HOUSEPARTY_DATA',
  'HOUSEPARTY_JOIN',
  'HOUSEPARTY_FOUND_IF_ALONE',
  'HOUSEPARTY_KEY_FILE',
  'HOUSEPARTY_KEY',
  'HOUSEPARTY_API_TOKEN',
  'HOUSEPARTY_DATA_FRAGMENTS',
  'HOUSEPARTY_PARITY_FRAGMENTS',
  'HOUSEPARTY_ON_STOP',
  'HOUSEPARTY_LEAVE_GRACE_MS',
  'HOUSEPARTY_REBUILD_DELAY_MS',
  'HOUSEPARTY_LOG_LEVEL',
  'HOUSEPARTY_S3_PORT',
  'HOUSEPARTY_S3_REGION',
  'HOUSEPARTY_S3_DOMAIN',
  'HOUSEPARTY_S3_ACCESS_KEY',
  'HOUSEPARTY_S3_SECRET_KEY',
  'HOUSEPARTY_NODE',
  'HOUSEPARTY_ZONE',
  'HOUSEPARTY_REGION',
  'HOUSEPARTY_DOMAINS_FROM_NODE',
])

function accepted(s: SettingSpec): string {
  if (s.choices) return s.choices.join(', ')
  if (s.kind === 'int') return s.max === undefined ? `≥ ${s.min ?? 0}` : `${s.min ?? 0}..${s.max}`
  return s.kind === 'bool' ? 'true, false' : s.kind === 'list' ? 'comma list' : 'text'
}

/** A markdown table of settings: flag, variable, default, what it accepts, what it does. */
export function settingsTable(specs: readonly SettingSpec[]): string {
  const shown = (d: SettingSpec['default']): string => (d === '' ? '—' : `\`${JSON.stringify(d)}\``)
  const rows = specs.map((s) => `| \`${s.flag}\` | \`${s.env}\` | ${shown(s.default)} | ${accepted(s)} | ${s.description} |`)
  return ['| flag | environment | default | accepts | meaning |', '|---|---|---|---|---|', ...rows].join('\n')
}

/** A topology label value, or empty. */
const DOMAIN_PATTERN = '^([A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?)?$'

function int(s: SettingSpec | undefined): Record<string, unknown> {
  return { type: 'integer', minimum: s?.min ?? 0, ...(s?.max === undefined ? {} : { maximum: s.max }) }
}

/** The chart's values.schema.json: the values that become peer settings, checked as the peer checks them. */
export function valuesSchema(): Record<string, unknown> {
  const byEnv = new Map<string, SettingSpec>(PEER_SETTINGS.map((s) => [s.env, s]))
  const free = PEER_SETTINGS.filter((s) => !CHART_MANAGED_ENV.has(s.env)).map((s) => s.env)
  return {
    title: 'House Party chart values',
    description: 'Generated from the peer settings table by `npm run docs`; values not listed here are free.',
    type: 'object',
    properties: {
      replicaCount: { type: 'integer', minimum: 1 },
      coding: {
        type: 'object',
        properties: { dataFragments: int(byEnv.get('HOUSEPARTY_DATA_FRAGMENTS')), parityFragments: int(byEnv.get('HOUSEPARTY_PARITY_FRAGMENTS')) },
      },
      onStop: { enum: [...(byEnv.get('HOUSEPARTY_ON_STOP')?.choices ?? [])] },
      leaveGraceMs: int(byEnv.get('HOUSEPARTY_LEAVE_GRACE_MS')),
      rebuildDelayMs: int(byEnv.get('HOUSEPARTY_REBUILD_DELAY_MS')),
      logLevel: { enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] },
      auth: { type: 'object', properties: { disabled: { type: 'boolean' } } },
      topology: {
        type: 'object',
        properties: {
          fromNodeLabels: { type: 'boolean' },
          // As the peer checks --zone and --region (a topology label value); empty: not set by hand.
          zone: { type: 'string', maxLength: 63, pattern: DOMAIN_PATTERN },
          region: { type: 'string', maxLength: 63, pattern: DOMAIN_PATTERN },
          whenUnsatisfiable: { enum: ['ScheduleAnyway', 'DoNotSchedule'] },
        },
      },
      config: {
        description: 'Further peer settings as HOUSEPARTY_* variables; the chart sets the others itself.',
        type: 'object',
        propertyNames: { enum: free },
        additionalProperties: { type: ['string', 'number', 'boolean'] },
      },
    },
  }
}

/** The files as they should be: path → text. */
export function generated(): Map<string, string> {
  const out = new Map<string, string>()
  const between = (path: string, marker: string, body: string): void => {
    const text = out.get(path) ?? readFileSync(join(ROOT, path), 'utf8')
    const start = `<!-- generated: ${marker} (npm run docs) -->`
    const end = '<!-- end generated -->'
    const at = text.indexOf(start)
    const stop = text.indexOf(end, at)
    if (at < 0 || stop < 0) throw new Error(`${path} has no ${start} … ${end} section`)
    out.set(path, `${text.slice(0, at + start.length)}\n${body}\n${text.slice(stop)}`)
  }
  between('docs/configuration.md', 'peer settings', settingsTable(PEER_SETTINGS))
  between('docs/operator.md', 'operator settings', settingsTable(OPERATOR_SETTINGS))
  out.set('charts/houseparty/values.schema.json', `${JSON.stringify(valuesSchema(), null, 2)}\n`)
  return out
}

if (import.meta.main) {
  for (const [path, text] of generated()) writeFileSync(join(ROOT, path), text)
}
