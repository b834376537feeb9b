import { readFileSync } from 'node:fs'
import { open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { HousePartyError } from '../../shared/errors.ts'

/** The lock file in a data dir: the pid of the peer running on it. */
export const LOCK_FILE = 'peer.pid'

/**
 * One peer per data dir. A second process on the same dir would take the
 * same place on the ring and write the same fragment files, so it must not
 * start at all. The lock is a file holding the holder's pid (which also lets
 * `houseparty signal` find the peer inside a container, where it is not PID 1).
 *
 * A lock left by a process that died (SIGKILL, a node crash, a container
 * restarted on the same volume) is stale and taken over: its pid is no longer
 * running, or is ours, or belongs to a process that started after the lock
 * was written (a container's PID numbering starts again on restart).
 */
export class DataDirLock {
  readonly path: string
  #held = false

  private constructor(path: string) {
    this.path = path
  }

  static async acquire(dataDir: string): Promise<DataDirLock> {
    const lock = new DataDirLock(join(dataDir, LOCK_FILE))
    const mine = `${process.pid}\n`
    try {
      const file = await open(lock.path, 'wx')
      await file.writeFile(mine)
      await file.close()
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const holder = await lockHolder(dataDir)
      if (holder !== undefined) {
        throw new HousePartyError('ERR_DATA_DIR_LOCKED', `data dir ${dataDir} is in use by another peer (pid ${holder}); give each peer its own --data-dir`, {
          details: { dataDir, pid: holder },
        })
      }
      // Stale: replace it in one step, then check no other start replaced it at the same moment.
      const tmp = `${lock.path}.${process.pid}.tmp`
      await writeFile(tmp, mine)
      await rename(tmp, lock.path)
      if ((await readFile(lock.path, 'utf8')) !== mine) {
        throw new HousePartyError('ERR_DATA_DIR_LOCKED', `data dir ${dataDir} was taken by another peer starting at the same time`, { details: { dataDir } })
      }
    }
    lock.#held = true
    return lock
  }

  /** Removes the lock, if it is still ours. */
  async release(): Promise<void> {
    if (!this.#held) return
    this.#held = false
    const text = await readFile(this.path, 'utf8').catch(() => '')
    if (text === `${process.pid}\n`) await unlink(this.path).catch(() => undefined)
  }
}

/** The pid of the live peer holding `dataDir`, or undefined when none does (no lock, or a stale one). */
export async function lockHolder(dataDir: string): Promise<number | undefined> {
  return (await inspectLock(dataDir)).pid
}

/** Who holds `dataDir`: the live peer's pid, or why nobody does (said to the user when a command finds no peer). */
export async function inspectLock(dataDir: string): Promise<{ pid: number; why?: undefined } | { pid?: undefined; why: string }> {
  const path = join(dataDir, LOCK_FILE)
  let text: string
  let writtenMs: number
  try {
    text = await readFile(path, 'utf8')
    writtenMs = (await stat(path)).mtimeMs
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { why: `no ${LOCK_FILE} there` }
    throw err
  }
  const pid = Number(text.trim())
  if (!Number.isSafeInteger(pid) || pid <= 0) return { why: `${LOCK_FILE} holds ${JSON.stringify(text.slice(0, 40))}, not a pid` }
  if (pid === process.pid) return { why: `${LOCK_FILE} names this very process (${pid})` }
  if (!alive(pid)) return { why: `pid ${pid} in ${LOCK_FILE} is not running (a stale lock)` }
  const started = processStartMs(pid)
  // A process that started after the lock was written cannot have written it (1 s for clock granularity).
  if (started !== undefined && started > writtenMs + 1_000) {
    return {
      why: `pid ${pid} started at ${new Date(started).toISOString()}, after ${LOCK_FILE} was written (${new Date(writtenMs).toISOString()}): a stale lock`,
    }
  }
  return { pid }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** When a process started (ms since the epoch), from /proc; undefined where there is no /proc. */
function processStartMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Field 22 (starttime, in clock ticks since boot) comes after the command name, which may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[19])
    const bootSeconds = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1])
    if (!Number.isFinite(ticks) || !Number.isFinite(bootSeconds)) return undefined
    // Linux reports starttime in USER_HZ, which is 100 on every architecture Node.js runs on.
    return bootSeconds * 1000 + ticks * 10
  } catch {
    return undefined
  }
}
