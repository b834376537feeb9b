import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { DataDirLock, inspectLock, LOCK_FILE } from '../../../src/peer/identity/index.ts'

const ticksOf = (pid: number): string => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] as string
}

describe('data dir lock', () => {
  let dir: string
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600_000)'], { stdio: 'ignore' })
  const otherPid = other.pid as number
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'houseparty-lock-'))
  })
  after(async () => {
    other.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
  })

  it('records the pid and its start ticks, refuses a second holder, and releases', async () => {
    const lock = await DataDirLock.acquire(dir)
    const text = await readFile(join(dir, LOCK_FILE), 'utf8')
    assert.equal(text, `${process.pid}\nstart ${ticksOf(process.pid)}\n`)
    assert.match((await inspectLock(dir)).why ?? '', /this very process/)
    await lock.release()
    assert.match((await inspectLock(dir)).why ?? '', /no peer\.pid/)
  })

  it('a live process with the recorded start ticks holds the dir, however old the file looks', async () => {
    await writeFile(join(dir, LOCK_FILE), `${otherPid}\nstart ${ticksOf(otherPid)}\n`)
    // A file time far before the process started: the wall-clock heuristic would call this stale.
    await utimes(join(dir, LOCK_FILE), new Date(0), new Date(0))
    assert.deepEqual(await inspectLock(dir), { pid: otherPid })
    await assert.rejects(DataDirLock.acquire(dir), { code: 'ERR_DATA_DIR_LOCKED' })
  })

  it('a live pid with other start ticks is a reused pid: the lock is stale and taken over', async () => {
    await writeFile(join(dir, LOCK_FILE), `${otherPid}\nstart ${Number(ticksOf(otherPid)) + 1}\n`)
    assert.match((await inspectLock(dir)).why ?? '', /now another process/)
    const lock = await DataDirLock.acquire(dir)
    assert.equal((await readFile(join(dir, LOCK_FILE), 'utf8')).split('\n')[0], String(process.pid))
    await lock.release()
  })

  it('a lock without start ticks (older peers) falls back to the file time, with a margin', async () => {
    await writeFile(join(dir, LOCK_FILE), `${otherPid}\n`)
    assert.deepEqual(await inspectLock(dir), { pid: otherPid }, 'written after the process started')
    await utimes(join(dir, LOCK_FILE), new Date(0), new Date(0))
    assert.match((await inspectLock(dir)).why ?? '', /after peer\.pid was written/)
  })

  it('a dead pid or garbage is stale', async () => {
    await writeFile(join(dir, LOCK_FILE), '2147483646\nstart 1\n')
    assert.match((await inspectLock(dir)).why ?? '', /not running/)
    await writeFile(join(dir, LOCK_FILE), 'hello\n')
    assert.match((await inspectLock(dir)).why ?? '', /not a pid/)
  })
})
