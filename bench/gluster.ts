import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, open, readFile, rm, stat } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { inParallel, median } from './lib.ts'

const run = promisify(execFile)

/**
 * GlusterFS as the reference for the small-file figures, measured in the
 * same run: a dispersed volume of 3 bricks with redundancy 1 (2+1, House
 * Party's default coding) on this host, mounted through FUSE with stock
 * options. Needs root; installs Debian's glusterfs-server when glusterd is
 * missing. Without them the reference is left out and the report says why.
 */
export interface GlusterVolume {
  mount: string
  close(): Promise<void>
}

const installed = (): Promise<boolean> =>
  run('glusterd', ['--version']).then(
    () => true,
    () => false,
  )

/** Installs Debian's glusterfs-server if glusterd is missing; a reason if it cannot. */
async function ensureGlusterInstalled(): Promise<string | undefined> {
  if (await installed()) return undefined
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  try {
    await run('apt-get', ['install', '-y', '--no-install-recommends', 'glusterfs-server'], { env, maxBuffer: 64 * 1024 * 1024 })
  } catch {
    // The package lists may be missing or stale (a fresh container): refresh them once and try again.
    await run('apt-get', ['update'], { env, maxBuffer: 64 * 1024 * 1024 }).catch(() => undefined)
    await run('apt-get', ['install', '-y', '--no-install-recommends', 'glusterfs-server'], { env, maxBuffer: 64 * 1024 * 1024 }).catch(() => undefined)
  }
  return (await installed()) ? undefined : 'glusterfs-server is not installed and apt-get could not install it'
}

export async function glusterVolume(): Promise<GlusterVolume | string> {
  if (process.getuid?.() !== 0) return 'not root'
  const missing = await ensureGlusterInstalled()
  if (missing) return missing
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

/** CPU time of every process on the machine so far, seconds (user, nice, system, irq, softirq from /proc/stat). */
export async function machineCpuSeconds(): Promise<number> {
  const fields = (await readFile('/proc/stat', 'utf8')).split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? []
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = fields
  return (user + nice + system + irq + softirq) / 100
}

/** Drops the page cache (root only), so the next read comes from disk: a cold read. False where it cannot. */
export async function dropCaches(): Promise<boolean> {
  return run('sh', ['-c', 'sync && echo 3 > /proc/sys/vm/drop_caches']).then(
    () => true,
    () => false,
  )
}

/**
 * One large file through the GlusterFS mount, as `cp` would: `bytes` written
 * in 1 MiB writes and fdatasynced (durable, as a put is when answered), then,
 * caches dropped, read back in 1 MiB reads and hashed. GB/s of each, and the
 * machine's CPU-seconds for each (every process: the FUSE client, the
 * bricks, the kernel).
 */
export async function glusterLargeFile(
  mount: string,
  bytes: number,
  blocks: readonly Buffer[],
): Promise<{ write: number; read: number; writeCpu: number; readCpu: number; hash: string }> {
  const path = join(mount, 'large.bin')
  let cpu0 = await machineCpuSeconds()
  let t0 = performance.now()
  const out = await open(path, 'w')
  try {
    for (let at = 0, i = 0; at < bytes; at += (blocks[0] as Buffer).length, i++) await out.write(blocks[i % blocks.length] as Buffer)
    await out.datasync()
  } finally {
    await out.close()
  }
  const write = bytes / ((performance.now() - t0) / 1000) / 1e9
  const writeCpu = (await machineCpuSeconds()) - cpu0
  await dropCaches()
  cpu0 = await machineCpuSeconds()
  t0 = performance.now()
  const hash = createHash('sha256')
  const input = await open(path, 'r')
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024)
    for (;;) {
      const { bytesRead } = await input.read(buf, 0, buf.length, null)
      if (bytesRead === 0) break
      hash.update(buf.subarray(0, bytesRead))
    }
  } finally {
    await input.close()
  }
  const read = bytes / ((performance.now() - t0) / 1000) / 1e9
  const readCpu = (await machineCpuSeconds()) - cpu0
  await rm(path, { force: true })
  return { write, read, writeCpu, readCpu, hash: hash.digest('hex') }
}

export interface GlusterLargeFigures {
  write: number[]
  read: number[]
  writeCpu: number[]
  readCpu: number[]
}

const GiB = 1024 * 1024 * 1024
const LARGE_RUNS = 3

/** GlusterFS's figures for the files bench (LARGE_RUNS 1 GiB writes and cold reads of the same bytes), or why there are none. */
export async function glusterReference(blocks: readonly Buffer[], want: string): Promise<GlusterLargeFigures | string> {
  const volume = await glusterVolume()
  if (typeof volume === 'string') return volume
  const out: GlusterLargeFigures = { write: [], read: [], writeCpu: [], readCpu: [] }
  try {
    for (let r = 0; r < LARGE_RUNS; r++) {
      const f = await glusterLargeFile(volume.mount, GiB, blocks)
      if (f.hash !== want) throw new Error(`GlusterFS read back sha256 ${f.hash}, expected ${want}`)
      out.write.push(f.write)
      out.read.push(f.read)
      out.writeCpu.push(f.writeCpu)
      out.readCpu.push(f.readCpu)
    }
    return out
  } finally {
    await volume.close()
  }
}

/** The files bench's side-by-side table: House Party's medians against GlusterFS's, with issue 24's goals. */
export function sideBySide(put: number, get: number, putCpu: number, getCpu: number, gluster: GlusterLargeFigures | string): string {
  if (typeof gluster === 'string') return `GlusterFS reference not measured: ${gluster}.`
  const g = { write: median(gluster.write), read: median(gluster.read), writeCpu: median(gluster.writeCpu), readCpu: median(gluster.readCpu) }
  return `Side by side with GlusterFS 2+1 in the same run (a dispersed volume of 3 bricks, redundancy 1, on this host, through FUSE: \`cp\`-like 1 MiB
writes of the same 1 GiB, fdatasynced; caches dropped, 1 MiB reads hashed). CPU is every process on the machine (/proc/stat), per GiB.

| | House Party | GlusterFS | ratio | goal |
|---|---|---|---|---|
| put / write 1 GiB, GB/s | ${put.toFixed(2)} | ${g.write.toFixed(2)} | ${(put / g.write).toFixed(2)}× | ≥ 3× |
| get / read 1 GiB cold, GB/s | ${get.toFixed(2)} | ${g.read.toFixed(2)} | ${(get / g.read).toFixed(2)}× | ≥ 2× |
| CPU-s per GiB put / written | ${putCpu.toFixed(1)} | ${g.writeCpu.toFixed(1)} | ${(putCpu / g.writeCpu).toFixed(2)} | ≤ 3 s |
| CPU-s per GiB got / read | ${getCpu.toFixed(1)} | ${g.readCpu.toFixed(1)} | ${(getCpu / g.readCpu).toFixed(2)} | |

GlusterFS runs, write: ${gluster.write.map((x) => x.toFixed(2)).join(', ')}; read: ${gluster.read.map((x) => x.toFixed(2)).join(', ')} GB/s.`
}
