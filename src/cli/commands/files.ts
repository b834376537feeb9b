import { existsSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import type { Command } from 'commander'
import { type ErrorCode, HousePartyError, toHousePartyError } from '../../shared/errors.ts'
import { filePath, plural } from '../client.ts'
import { apiFor, asPrefix, emit, note, under } from '../output.ts'
import { localKind, localPathFor, userPath, walk } from '../paths.ts'
import { formatBytes, Progress } from '../progress.ts'
import { type TargetOptions, withTarget } from '../target.ts'
import { copyFile, getFile, listFiles, listUnder, putFile, type Stored, sharedPrefix } from '../transfer.ts'

/** What a command that moves several files did: what it stored or wrote, what it skipped, what failed. */
export interface Outcome<T> {
  done: T[]
  skipped: { name: string; why: string }[]
  failed: { name: string; code: ErrorCode; message: string }[]
}

/** Runs `each` over the items, one at a time, collecting failures instead of stopping at the first. */
async function eachOf<I, T>(items: I[], nameOf: (i: I) => string, each: (i: I) => Promise<T | { skipped: string }>): Promise<Outcome<T>> {
  const out: Outcome<T> = { done: [], skipped: [], failed: [] }
  for (const item of items) {
    try {
      const r = await each(item)
      if (r && typeof r === 'object' && 'skipped' in r) out.skipped.push({ name: nameOf(item), why: r.skipped })
      else out.done.push(r as T)
    } catch (err) {
      const e = toHousePartyError(err)
      out.failed.push({ name: nameOf(item), code: e.code, message: e.message })
    }
  }
  return out
}

/** Reports skips and failures on stderr, and fails the command (exit 1) when anything failed. */
function finish<T>(opts: { json?: boolean }, outcome: Outcome<T>, render: (o: Outcome<T>) => string): void {
  emit(opts, outcome, render)
  if (!opts.json) {
    for (const s of outcome.skipped) note(`skipped ${s.name}: ${s.why}`)
    for (const f of outcome.failed) note(`failed ${f.name}: ${f.code}: ${f.message}`)
  }
  if (outcome.failed.length > 0) {
    throw new HousePartyError(outcome.failed[0]?.code ?? 'ERR_INTERNAL', `${plural(outcome.failed.length, 'file')} failed`)
  }
}

const storedLine = (r: Stored): string => `${r.name}\t${r.size}\t${r.hash}\t${r.version}`

interface PutOptions extends TargetOptions {
  name?: string
  prefix?: string
  recursive?: boolean
  clobber?: boolean
}

interface GetOptions extends TargetOptions {
  output?: string
  recursive?: boolean
  force?: boolean
  clobber?: boolean
}

export function registerFileCommands(program: Command): void {
  withTarget(program.command('put'))
    .description('store local files (and, with -r, directories) in the party')
    .argument('<paths...>', 'local files or directories')
    .option('--name <name>', 'the name to store one file under (default: PREFIX + its base name)')
    .option('--prefix <prefix>', 'a party "directory" to put everything under')
    .option('-r, --recursive', 'put directories with everything in them, keeping relative names')
    .option('--no-clobber', 'skip names the party already has, instead of storing a new version')
    .action(async (paths: string[], opts: PutOptions) => {
      const api = await apiFor(opts)
      const prefix = asPrefix(opts.prefix)
      const jobs: { path: string; name: string; size: number }[] = []
      for (const given of paths) {
        const path = userPath(given)
        if ((await localKind(path)) === 'file') {
          jobs.push({ path, name: opts.name ?? `${prefix}${basename(path)}`, size: (await stat(path)).size })
          continue
        }
        if (!opts.recursive) throw new HousePartyError('ERR_INVALID_ARGUMENT', `${given} is a directory; put it with --recursive`)
        for (const rel of await walk(path)) {
          const local = join(path, ...rel.split('/'))
          jobs.push({ path: local, name: `${prefix}${basename(path)}/${rel}`, size: (await stat(local)).size })
        }
      }
      if (opts.name && jobs.length !== 1) throw new HousePartyError('ERR_INVALID_ARGUMENT', '--name names one file; use --prefix for several')
      const existing = opts.clobber === false ? new Set((await listFiles(api, sharedPrefix(jobs.map((j) => j.name)))).files.map((f) => f.name)) : undefined
      const progress = new Progress({ files: jobs.length, bytes: jobs.reduce((n, j) => n + j.size, 0) })
      const outcome = await eachOf(
        jobs,
        (j) => j.name,
        async (j) => (existing?.has(j.name) ? { skipped: 'the party has it (--no-clobber)' } : putFile(api, j.path, j.name, progress)),
      ).finally(() => progress.stop())
      finish(opts, outcome, (o) => o.done.map(storedLine).join('\n'))
    })

  withTarget(program.command('get'))
    .description('fetch files (and, with -r, everything under a prefix), each verified against its sha256')
    .argument('<names...>', 'party file names, or prefixes with -r')
    .option('-o, --output <path>', 'where to write: a file for one name ("-": stdout), else a directory (default: here)')
    .option('-r, --recursive', 'fetch every file under each prefix, keeping relative names')
    .option('-f, --force', 'overwrite local files that exist')
    .option('--no-clobber', 'skip local files that exist, instead of failing')
    .action(async (names: string[], opts: GetOptions) => {
      const api = await apiFor(opts)
      const jobs: { name: string; out: string; size?: number }[] = []
      const single = names.length === 1 && !opts.recursive
      if (single) {
        const name = names[0] as string
        jobs.push({ name, out: opts.output === '-' ? '-' : userPath(opts.output ?? name.split('/').at(-1) ?? name) })
      } else {
        if (opts.output === '-') throw new HousePartyError('ERR_INVALID_ARGUMENT', '-o - writes one file to stdout; use `houseparty cat` for several')
        const dir = userPath(opts.output ?? '.')
        const listing = opts.recursive ? await listUnder(api, names) : []
        for (const given of names) {
          if (!opts.recursive) {
            jobs.push({ name: given, out: localPathFor(dir, given.split('/').at(-1) ?? given) })
            continue
          }
          const matched = listing.filter((f) => under(f.name, given))
          if (matched.length === 0) throw new HousePartyError('ERR_FILE_NOT_FOUND', `no file under ${JSON.stringify(given)}`)
          // Names keep their path from the prefix's last segment on: get -r docs → ./docs/…
          const parent = given.replace(/\/+$/, '').split('/').slice(0, -1).join('/')
          for (const f of matched) jobs.push({ name: f.name, out: localPathFor(dir, parent ? f.name.slice(parent.length + 1) : f.name), size: f.size })
        }
      }
      const progress = new Progress({
        files: jobs.length,
        bytes: jobs.reduce((n, j) => n + (j.size ?? 0), 0),
        enabled: process.stderr.isTTY === true && opts.output !== '-',
      })
      const outcome = await eachOf<(typeof jobs)[number], { name: string; path: string; size: number; hash: string }>(
        jobs,
        (j) => j.name,
        async (j) => {
          if (j.out !== '-' && existsSync(j.out) && !opts.force) {
            if (opts.clobber === false) return { skipped: `${j.out} exists (--no-clobber)` }
            throw new HousePartyError('ERR_EXISTS', `${j.out} exists; --force overwrites it, --no-clobber skips it`)
          }
          const r = await getFile(api, j.name, j.out, progress)
          return { name: j.name, path: j.out, size: r.size, hash: r.hash }
        },
      ).finally(() => progress.stop())
      finish(opts, outcome, (o) =>
        o.done
          .filter((d) => d.path !== '-')
          .map((d) => `${d.name} -> ${d.path} (${formatBytes(d.size)}, sha256 ${d.hash})`)
          .join('\n'),
      )
    })

  withTarget(program.command('cat'))
    .description('write files to stdout, one after another, each verified')
    .argument('<names...>', 'party file names')
    .action(async (names: string[], opts: TargetOptions) => {
      const api = await apiFor(opts)
      for (const name of names) await getFile(api, name, '-')
    })

  withTarget(program.command('rm'))
    .description('remove files: every fragment and tracker record (with -r, everything under a prefix)')
    .argument('<names...>', 'party file names, or prefixes with -r')
    .option('-r, --recursive', 'remove every file under each prefix')
    .action(async (names: string[], opts: TargetOptions & { recursive?: boolean }) => {
      const api = await apiFor(opts)
      let targets = names
      if (opts.recursive) {
        const listing = await listUnder(api, names)
        targets = listing.filter((f) => names.some((p) => under(f.name, p))).map((f) => f.name)
        if (targets.length === 0) throw new HousePartyError('ERR_FILE_NOT_FOUND', `no file under ${names.map((n) => JSON.stringify(n)).join(', ')}`)
      }
      const outcome = await eachOf(
        targets,
        (n) => n,
        async (name) => {
          await api.json(filePath(name), { method: 'DELETE' })
          return name
        },
      )
      finish(opts, outcome, (o) => o.done.map((n) => `removed ${n}`).join('\n'))
    })

  for (const move of [false, true]) {
    withTarget(program.command(move ? 'mv' : 'cp'))
      .description(
        move ? 'rename files inside the party (copied, checked, then the old name removed)' : 'copy files inside the party (streamed through here, checked)',
      )
      .argument('<from>', 'party file name (with -r, a prefix)')
      .argument('<to>', 'new name (with -r, the new prefix)')
      .option('-r, --recursive', 'every file under the prefix')
      .option('--no-clobber', 'skip names that exist already')
      .action(async (from: string, to: string, opts: TargetOptions & { recursive?: boolean; clobber?: boolean }) => {
        const api = await apiFor(opts)
        // The source and what may be overwritten: everything under both (a name is under itself).
        const listing = await listUnder(api, [from, to])
        const names = new Set(listing.map((f) => f.name))
        const pairs = opts.recursive
          ? listing.filter((f) => under(f.name, from)).map((f) => ({ from: f.name, to: `${asPrefix(to)}${f.name.slice(asPrefix(from).length)}`, size: f.size }))
          : [{ from, to, size: listing.find((f) => f.name === from)?.size ?? 0 }]
        if (pairs.length === 0 || (!opts.recursive && !names.has(from))) throw new HousePartyError('ERR_FILE_NOT_FOUND', `no file ${JSON.stringify(from)}`)
        const progress = new Progress({ files: pairs.length, bytes: pairs.reduce((n, p) => n + p.size, 0) })
        const outcome = await eachOf(
          pairs,
          (p) => p.from,
          async (p) => {
            if (p.from === p.to) return { skipped: 'same name' }
            if (opts.clobber === false && names.has(p.to)) return { skipped: `${p.to} exists (--no-clobber)` }
            const stored = await copyFile(api, p.from, p.to, progress)
            if (move) await api.json(filePath(p.from), { method: 'DELETE' })
            return { from: p.from, ...stored }
          },
        ).finally(() => progress.stop())
        finish(opts, outcome, (o) => o.done.map((d) => `${d.from} -> ${d.name} (${formatBytes(d.size)}, sha256 ${d.hash})`).join('\n'))
      })
  }
}
