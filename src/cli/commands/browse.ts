import type { Command } from 'commander'
import { HousePartyError } from '../../shared/errors.ts'
import { filePath, type PartyApi, plural, table } from '../client.ts'
import { apiFor, asPrefix, emit, under } from '../output.ts'
import { formatBytes } from '../progress.ts'
import { type TargetOptions, withTarget } from '../target.ts'
import { type ListedFile, listedFile, listFiles } from '../transfer.ts'

/** A row of `ls`: a file, or (without -r) a "directory" standing for the files under it. */
type Entry = ({ type: 'file' } & ListedFile) | { type: 'dir'; name: string; files: number; size: number }

/** The entries of `ls PREFIX`: files directly under it, and one entry per next-level "directory" (everything, with recursive). */
export function entriesUnder(files: readonly ListedFile[], prefix: string, recursive: boolean): Entry[] {
  const p = asPrefix(prefix)
  const out: Entry[] = []
  const dirs = new Map<string, { type: 'dir'; name: string; files: number; size: number }>()
  for (const f of files) {
    if (!(f.name.startsWith(p) || f.name === prefix)) continue
    const rest = f.name.slice(p.length)
    const slash = rest.indexOf('/')
    if (recursive || slash < 0 || f.name === prefix) out.push({ type: 'file', ...f })
    else {
      const name = `${p}${rest.slice(0, slash + 1)}`
      const d = dirs.get(name) ?? { type: 'dir', name, files: 0, size: 0 }
      d.files++
      d.size += f.size
      dirs.set(name, d)
    }
  }
  return [...dirs.values(), ...out].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

function renderEntries(entries: Entry[], guests: number, answered: number): string {
  const files = entries.reduce((n, e) => n + (e.type === 'file' ? 1 : e.files), 0)
  const rows = entries.map((e) =>
    e.type === 'dir'
      ? [e.name, formatBytes(e.size), '', '', '', '', plural(e.files, 'file')]
      : [e.name, formatBytes(e.size), e.health, `${e.holders.filter((h) => h.live).length}/${e.k + e.m}`, `${e.k}+${e.m}`, e.hash.slice(0, 12), e.version],
  )
  return `${plural(files, 'file')} (${answered} of ${guests} guests answered)\n${table(['NAME', 'SIZE', 'HEALTH', 'HOLDERS', 'CODE', 'SHA256', 'VERSION'], rows)}`
}

export interface FileStat extends ListedFile {
  /** Bytes the fragments take across the party (about size × (k+m) / k). */
  storedBytes: number
}

async function statFile(api: PartyApi, name: string): Promise<FileStat> {
  const f = await listedFile(api, name)
  if (!f) {
    // Not in the listing (trackers unreachable?): HEAD says whether the file exists at all.
    const res = await api.request(filePath(name), { method: 'HEAD' })
    throw new HousePartyError(
      res.status === 404 ? 'ERR_FILE_NOT_FOUND' : 'ERR_NOT_ENOUGH_FRAGMENTS',
      `${name}: ${res.status === 404 ? 'no such file' : 'not listed by any tracker that answered'}`,
    )
  }
  return { ...f, storedBytes: Math.ceil(f.size / f.k) * (f.k + f.m) }
}

function renderStat(s: FileStat): string {
  const lines = [
    `name      ${s.name}`,
    `size      ${s.size} (${formatBytes(s.size)}); ${formatBytes(s.storedBytes)} stored as ${s.k}+${s.m}`,
    `sha256    ${s.hash}`,
    `version   ${s.version}`,
    `health    ${s.health}: ${s.holders.filter((h) => h.live).length} of ${s.k + s.m} fragments on live guests, any ${s.k} rebuild it`,
    'holders',
    table(
      ['FRAGMENT', 'KIND', 'GUEST', 'LIVE'],
      [...s.holders].sort((a, b) => a.index - b.index).map((h) => [String(h.index), h.index < s.k ? 'data' : 'parity', h.guest, h.live ? 'yes' : 'no']),
    ),
  ]
  return lines.join('\n')
}

interface UsageRow {
  path: string
  files: number
  bytes: number
  storedBytes: number
}

/** Bytes under PREFIX, per next-level "directory" (and files directly under it), and in total. */
export function usage(files: readonly ListedFile[], prefix: string): { rows: UsageRow[]; total: UsageRow } {
  const p = asPrefix(prefix)
  const rows = new Map<string, UsageRow>()
  const total: UsageRow = { path: p || '(all)', files: 0, bytes: 0, storedBytes: 0 }
  for (const f of files) {
    if (!under(f.name, prefix)) continue
    const rest = f.name.slice(p.length)
    const slash = rest.indexOf('/')
    const key = slash < 0 ? f.name : `${p}${rest.slice(0, slash + 1)}`
    const row = rows.get(key) ?? { path: key, files: 0, bytes: 0, storedBytes: 0 }
    const stored = Math.ceil(f.size / f.k) * (f.k + f.m)
    for (const r of [row, total]) {
      r.files++
      r.bytes += f.size
      r.storedBytes += stored
    }
    rows.set(key, row)
  }
  return { rows: [...rows.values()].sort((a, b) => b.bytes - a.bytes), total }
}

export function registerBrowseCommands(program: Command): void {
  withTarget(program.command('ls'))
    .description('list files under a prefix with their health (directories summed up, unless -r)')
    .argument('[prefix]', 'a party "directory" (default: the top)', '')
    .option('-r, --recursive', 'every file under the prefix, not one level')
    .action(async (prefix: string, opts: TargetOptions & { recursive?: boolean }) => {
      const listing = await listFiles(await apiFor(opts), prefix)
      const entries = entriesUnder(listing.files, prefix, opts.recursive === true)
      if (prefix && entries.length === 0) throw new HousePartyError('ERR_FILE_NOT_FOUND', `nothing under ${JSON.stringify(prefix)}`)
      emit(opts, { entries, guests: listing.guests, answered: listing.answered }, (d) => renderEntries(d.entries, d.guests, d.answered))
    })

  withTarget(program.command('stat'))
    .description('one file: size, hash, version, coding, health and which guest holds each fragment')
    .argument('<name>', 'party file name')
    .action(async (name: string, opts: TargetOptions) => {
      emit(opts, await statFile(await apiFor(opts), name), renderStat)
    })

  withTarget(program.command('du'))
    .description('bytes stored under a prefix, per directory, before and after erasure coding')
    .argument('[prefix]', 'a party "directory" (default: everything)', '')
    .action(async (prefix: string, opts: TargetOptions) => {
      const u = usage((await listFiles(await apiFor(opts), prefix)).files, prefix)
      emit(opts, u, (d) =>
        table(
          ['PATH', 'FILES', 'SIZE', 'STORED'],
          [...d.rows, d.total].map((r) => [r.path, String(r.files), formatBytes(r.bytes), formatBytes(r.storedBytes)]),
        ),
      )
    })
}
