import type { Command } from 'commander'
import type { PartyHealth } from '../../peer/recovery/index.ts'
import { HousePartyError, toHousePartyError } from '../../shared/errors.ts'
import { plural } from '../client.ts'
import { apiFor, emit, note, under } from '../output.ts'
import { Progress } from '../progress.ts'
import { type TargetOptions, withTarget } from '../target.ts'
import { getFile, listedFile, listFiles, listUnder } from '../transfer.ts'

/** `health` exit statuses, for scripts and probes: 0 whole, 2 degraded (or guests not answering), 3 files lost. 1 is any error. */
export const HEALTH_EXIT = { healthy: 0, degraded: 2, lost: 3 } as const

export function healthVerdict(h: PartyHealth): keyof typeof HEALTH_EXIT {
  if (h.lost > 0) return 'lost'
  if (h.degraded > 0 || h.answered < h.guests) return 'degraded'
  return 'healthy'
}

function renderHealth(h: PartyHealth & { verdict: string }): string {
  const lines = [
    `${h.verdict}: ${plural(h.files, 'file')}, ${h.healthy} at full redundancy, ${h.degraded} degraded, ${h.lost} lost; ${h.answered} of ${plural(h.guests, 'guest')} answered`,
  ]
  for (const w of h.worst) lines.push(`  ${w.name}: ${w.usable} of ${w.total} fragments usable, ${w.needed} needed`)
  // A peer of an earlier release says nothing of domains.
  if (h.atRisk) {
    for (const level of ['node', 'zone'] as const) {
      const r = h.atRisk[level]
      lines.push(
        r.files === 0
          ? `losing any one ${level} loses no file (${plural(r.domains, level)})`
          : `at risk: losing ${level} ${r.worst} would make ${plural(r.files, 'file')} unreadable (${plural(r.domains, level)})`,
      )
    }
  }
  return lines.join('\n')
}

export function registerCheckCommands(program: Command): void {
  withTarget(program.command('health'))
    .description(`the party's redundancy; exit status ${HEALTH_EXIT.healthy} whole, ${HEALTH_EXIT.degraded} degraded, ${HEALTH_EXIT.lost} files lost, 1 error`)
    .action(async (opts: TargetOptions) => {
      const h = await (await apiFor(opts)).json<PartyHealth>('/health/party')
      const verdict = healthVerdict(h)
      emit(opts, { ...h, verdict }, renderHealth)
      process.exitCode = HEALTH_EXIT[verdict]
    })

  withTarget(program.command('verify'))
    .description('read files back and check each against its sha256 (nothing is written)')
    .argument('[names...]', 'party file names or, with -r, prefixes')
    .option('-a, --all', 'every file of the party')
    .option('-r, --recursive', 'every file under each prefix')
    .action(async (names: string[], opts: TargetOptions & { all?: boolean; recursive?: boolean }) => {
      const api = await apiFor(opts)
      if (!opts.all && names.length === 0) throw new HousePartyError('ERR_INVALID_ARGUMENT', 'name files to verify, or --all')
      const chosen = opts.all
        ? (await listFiles(api)).files
        : opts.recursive
          ? (await listUnder(api, names)).filter((f) => names.some((p) => under(f.name, p)))
          : await Promise.all(names.map(async (n) => (await listedFile(api, n)) ?? { name: n, size: 0 }))
      const progress = new Progress({ files: chosen.length, bytes: chosen.reduce((n, f) => n + f.size, 0) })
      const results: { name: string; ok: boolean; size?: number; hash?: string; code?: string; message?: string }[] = []
      try {
        for (const f of chosen) {
          try {
            const r = await getFile(api, f.name, undefined, progress)
            results.push({ name: f.name, ok: true, size: r.size, hash: r.hash })
          } catch (err) {
            const e = toHousePartyError(err)
            results.push({ name: f.name, ok: false, code: e.code, message: e.message })
          }
        }
      } finally {
        progress.stop()
      }
      const bad = results.filter((r) => !r.ok)
      emit(opts, { checked: results.length, failed: bad.length, results }, (d) =>
        [
          ...d.results.map((r) => (r.ok ? `OK      ${r.name}` : `FAILED  ${r.name}: ${r.code}: ${r.message}`)),
          `${d.checked - d.failed} of ${plural(d.checked, 'file')} verified`,
        ].join('\n'),
      )
      if (bad.length > 0) {
        if (!opts.json) note(`${plural(bad.length, 'file')} failed verification`)
        process.exitCode = 1
      }
    })
}
