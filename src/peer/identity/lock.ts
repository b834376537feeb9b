import { readFileSync } from 'node:fs'
import { open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { HousePartyError } from '../../shared/errors.ts'

/** The lock file in a data dir: the pid of the peer running on it (first line), then when that process started. */
export const LOCK_FILE = 'peer.pid'

/**
 * One peer per data dir. A second process on the same dir would take the
 * same place on the ring and write the same fragment files, so it must not
 * start at all. The lock is a file holding the holder's pid (which also lets
 * `houseparty signal` find the peer inside a container, where it is not PID 1).
 *
 * A lock left by a process that died (SIGKILL, a node crash, a container
 * restarted on the same volume) is stale and taken over: its pid is no longer
 * running, or is ours, or now names another process (a container's PID
 * numbering starts again on restart). The second line records the holder's
 * start time in kernel clock ticks, so a reused pid is told apart exactly;
 * comparing wall-clock times instead misjudged live peers on a loaded machine,
 * where the boot time the kernel reports drifts from file times by seconds.
 */
export class DataDirLock {
  readonly path: string
  #held = false

  private constructor(path: string) {
    this.path = path
  }

  static async acquire(dataDir: string): Promise<DataDirLock> {
    const lock = new DataDirLock(join(dataDir, LOCK_FILE))
    const mine = lockText(process.pid)
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
    if (text === lockText(process.pid)) await unlink(this.path).catch(() => undefined)
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
  const [pidLine = '', startLine = ''] = text.split('\n')
  const pid = Number(pidLine.trim())
  if (!Number.isSafeInteger(pid) || pid <= 0) return { why: `${LOCK_FILE} holds ${JSON.stringify(text.slice(0, 40))}, not a pid` }
  if (pid === process.pid) return { why: `${LOCK_FILE} names this very process (${pid})` }
  if (!alive(pid)) return { why: `pid ${pid} in ${LOCK_FILE} is not running (a stale lock)` }
  const recorded = /^start (\d+)$/.exec(startLine.trim())?.[1]
  const actual = startTicks(pid)
  if (recorded !== undefined) {
    if (actual !== undefined && actual !== recorded) {
      return { why: `pid ${pid} is now another process (started at tick ${actual}, the lock holder at ${recorded}): a stale lock` }
    }
    return { pid }
  }
  // A lock written before the start time was recorded: a process that started after it was written cannot own it.
  const started = actual === undefined ? undefined : ticksToEpochMs(actual)
  if (started !== undefined && started > writtenMs + 5_000) {
    return {
      why: `pid ${pid} started at ${new Date(started).toISOString()}, after ${LOCK_FILE} was written (${new Date(writtenMs).toISOString()}): a stale lock`,
    }
  }
  return { pid }
}

/** What a lock file holds for `pid`: the pid, then its start time where /proc tells it. */
function lockText(pid: number): string {
  const ticks = startTicks(pid)
  return ticks === undefined ? `${pid}\n` : `${pid}\nstart ${ticks}\n`
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** When a process started, in clock ticks since boot (field 22 of /proc/PID/stat); undefined where there is no /proc. */
function startTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The fields after the command name, which may hold spaces and parentheses.
    const ticks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
    return ticks !== undefined && /^\d+$/.test(ticks) ? ticks : undefined
  } catch {
    return undefined
  }
}

/** Start ticks as wall-clock ms: approximate (the kernel's boot time drifts), so used only with a wide margin. */
function ticksToEpochMs(ticks: string): number | undefined {
  try {
    const bootSeconds = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1])
    // Linux reports starttime in USER_HZ, which is 100 on every architecture Node.js runs on.
    return Number.isFinite(bootSeconds) ? bootSeconds * 1000 + Number(ticks) * 10 : undefined
  } catch {
    return undefined
  }
}
