import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, open, readFile, rm, stat } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { inParallel } from './lib.ts'

const run = promisify(execFile)

/**
 * GlusterFS as the reference for the small-file figures, measured in the
 * same run: a dispersed volume of 3 bricks with redundancy 1 (2+1, House
 * Party's default coding) on this host, mounted through FUSE with stock
 * options. Needs root and Debian's glusterfs-server; without them the
 * reference is left out and the report says why.
 */
export interface GlusterVolume {
  mount: string
  close(): Promise<void>
}

export async function glusterVolume(): Promise<GlusterVolume | string> {
  if (process.getuid?.() !== 0) return 'not root'
  if (
    !(await run('glusterd', ['--version']).then(
      () => true,
      () => false,
    ))
  )
    return 'glusterfs-server is not installed (apt install glusterfs-server)'
  const dir = await mkdtemp(join(tmpdir(), 'houseparty-gluster-'))
  const bricks = [1, 2, 3].map((i) => join(dir, `brick${i}`))
  const mount = join(dir, 'mnt')
  for (const d of [...bricks, mount]) await mkdir(d, { recursive: true })
  const started = !(await run('pgrep', ['-x', 'glusterd']).then(
    () => true,
    () => false,
  ))
  if (started) await run('glusterd', [])
  const host = hostname()
  const volume = `hpbench${process.pid}`
  const gluster = (...args: string[]) => run('gluster', ['--mode=script', ...args])
  const close = async (): Promise<void> => {
    await run('umount', [mount]).catch(() => run('umount', ['-l', mount]).catch(() => undefined))
    await gluster('volume', 'stop', volume, 'force').catch(() => undefined)
    await gluster('volume', 'delete', volume).catch(() => undefined)
    if (started) await run('pkill', ['-x', 'glusterd']).catch(() => undefined)
    await rm(dir, { recursive: true, force: true })
  }
  try {
    // A glusterd just started takes a moment before it answers.
    for (let attempt = 0; ; attempt++) {
      try {
        await gluster('volume', 'create', volume, 'disperse', '3', 'redundancy', '1', ...bricks.map((b) => `${host}:${b}`), 'force')
        break
      } catch (err) {
        if (attempt >= 20) throw err
        await new Promise((r) => setTimeout(r, 500))
      }
    }
    await gluster('volume', 'start', volume)
    await run('mount', ['-t', 'glusterfs', `${host}:/${volume}`, mount])
    await stat(mount)
    return { mount, close }
  } catch (err) {
    await close()
    return `could not set up a GlusterFS volume: ${(err as Error).message.split('\n')[0]}`
  }
}

/**
 * Writes `count` files through the mount with `clients` concurrent writers,
 * each file opened, written, fdatasynced and closed (durable when written, as
 * a House Party put is when answered), then reads every one back and checks
 * it. Returns files/s for both.
 */
export async function glusterSmallFiles(
  mount: string,
  count: number,
  clients: number,
  nameOf: (i: number) => string,
  contentOf: (i: number) => Buffer,
): Promise<{ putRate: number; getRate: number }> {
  const dirs = new Set(Array.from({ length: count }, (_, i) => join(mount, nameOf(i), '..')))
  for (const d of dirs) await mkdir(d, { recursive: true })
  const workers = async (job: (i: number) => Promise<void>): Promise<number> => {
    const t = performance.now()
    await inParallel(count, clients, job)
    return count / ((performance.now() - t) / 1000)
  }
  const putRate = await workers(async (i) => {
    const handle = await open(join(mount, nameOf(i)), 'w')
    try {
      await handle.write(contentOf(i))
      await handle.datasync()
    } finally {
      await handle.close()
    }
  })
  const getRate = await workers(async (i) => {
    const body = await readFile(join(mount, nameOf(i)))
    if (!body.equals(contentOf(i))) throw new Error(`GlusterFS returned other bytes for ${nameOf(i)}`)
  })
  return { putRate, getRate }
}
