import { createHash } from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import { stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { Command } from 'commander'
import { HousePartyError, toHousePartyError } from '../../shared/errors.ts'
import { filePath, type PartyApi, plural } from '../client.ts'
import { apiFor, asPrefix, emit, note } from '../output.ts'
import { localKind, localPathFor, userPath, walk } from '../paths.ts'
import { Progress } from '../progress.ts'
import { type TargetOptions, withTarget } from '../target.ts'
import { getFile, listFiles, putFile } from '../transfer.ts'

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path), hash)
  return hash.digest('hex')
}

type Action = { op: 'copy' | 'update' | 'remove'; name: string; path: string; size: number }

interface MirrorOptions extends TargetOptions {
  remove?: boolean
  dryRun?: boolean
}

/**
 * One direction of a mirror: what differs by sha256 is copied, what is new
 * is copied, and with --remove what the source lacks is removed from the
 * destination. Files that match are not touched, so a second run does nothing.
 */
async function plan(api: PartyApi, dir: string, prefix: string, direction: 'push' | 'pull', remove: boolean): Promise<{ actions: Action[]; same: number }> {
  const party = new Map((await listFiles(api, prefix)).files.map((f) => [f.name.slice(prefix.length), f]))
  const local = existsSync(dir) ? await walk(dir) : []
  const actions: Action[] = []
  let same = 0
  if (direction === 'push') {
    for (const rel of local) {
      const path = join(dir, ...rel.split('/'))
      const theirs = party.get(rel)
      const size = (await stat(path)).size
      if (!theirs) actions.push({ op: 'copy', name: prefix + rel, path, size })
      else if (theirs.size !== size || theirs.hash !== (await sha256Of(path))) actions.push({ op: 'update', name: prefix + rel, path, size })
      else same++
    }
    if (remove) for (const [rel, f] of party) if (!local.includes(rel)) actions.push({ op: 'remove', name: f.name, path: '', size: f.size })
  } else {
    const mine = new Set(local)
    for (const [rel, f] of party) {
      const path = localPathFor(dir, rel)
      if (!mine.has(rel)) actions.push({ op: 'copy', name: f.name, path, size: f.size })
      else if ((await stat(path)).size !== f.size || (await sha256Of(path)) !== f.hash) actions.push({ op: 'update', name: f.name, path, size: f.size })
      else same++
    }
    if (remove) for (const rel of local) if (!party.has(rel)) actions.push({ op: 'remove', name: rel, path: join(dir, ...rel.split('/')), size: 0 })
  }
  return { actions, same }
}

export function registerMirrorCommand(program: Command): void {
  const mirror = program.command('mirror').description('make a party prefix and a local directory hold the same files, by sha256 (push or pull)')
  const run = async (direction: 'push' | 'pull', dirArg: string, prefixArg: string, opts: MirrorOptions): Promise<void> => {
    const api = await apiFor(opts)
    const dir = userPath(dirArg)
    if (direction === 'push' && (await localKind(dir)) !== 'dir') throw new HousePartyError('ERR_INVALID_ARGUMENT', `${dirArg} is not a directory`)
    const prefix = asPrefix(prefixArg)
    const { actions, same } = await plan(api, dir, prefix, direction, opts.remove === true)
    const done: Action[] = []
    const failed: { name: string; code: string; message: string }[] = []
    if (!opts.dryRun) {
      const moving = actions.filter((a) => a.op !== 'remove')
      const progress = new Progress({ files: moving.length, bytes: moving.reduce((n, a) => n + a.size, 0) })
      try {
        for (const a of actions) {
          try {
            if (a.op === 'remove') {
              if (direction === 'push') await api.json(filePath(a.name), { method: 'DELETE' })
              else await unlink(a.path)
            } else if (direction === 'push') await putFile(api, a.path, a.name, progress)
            else await getFile(api, a.name, a.path, progress)
            done.push(a)
          } catch (err) {
            const e = toHousePartyError(err)
            failed.push({ name: a.name, code: e.code, message: e.message })
          }
        }
      } finally {
        progress.stop()
      }
    }
    const report = { direction, dryRun: opts.dryRun === true, unchanged: same, actions: opts.dryRun ? actions : done, failed }
    emit(opts, report, (r) =>
      [
        ...r.actions.map((a) => `${r.dryRun ? 'would ' : ''}${a.op} ${direction === 'push' || a.op === 'remove' ? a.name : `${a.name} -> ${a.path}`}`),
        `${plural(r.actions.length, 'change')}${r.dryRun ? ' planned' : ''}, ${r.unchanged} unchanged`,
      ].join('\n'),
    )
    for (const f of failed) if (!opts.json) note(`failed ${f.name}: ${f.code}: ${f.message}`)
    if (failed.length > 0) process.exitCode = 1
  }
  withTarget(mirror.command('push'))
    .description('local directory → party prefix')
    .argument('<dir>', 'local directory')
    .argument('[prefix]', 'party prefix (default: the top)', '')
    .option('--remove', 'also remove party files under the prefix that the directory lacks')
    .option('--dry-run', 'say what would change, change nothing')
    .action((dir: string, prefix: string, opts: MirrorOptions) => run('push', dir, prefix, opts))
  withTarget(mirror.command('pull'))
    .description('party prefix → local directory')
    .argument('<prefix>', 'party prefix ("" for everything)')
    .argument('<dir>', 'local directory (made if missing)')
    .option('--remove', 'also remove local files that the party lacks under the prefix')
    .option('--dry-run', 'say what would change, change nothing')
    .action((prefix: string, dir: string, opts: MirrorOptions) => run('pull', dir, prefix, opts))
}
