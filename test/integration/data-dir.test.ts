import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import { CLI, guestsOf, partiesForThisFile, startParty } from '../helpers/party.ts'
import { waitFor } from '../helpers/wait.ts'

const run = promisify(execFile)
const newParty = partiesForThisFile()

/** Runs the CLI to completion: its exit code and output. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: 60_000 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

/** The process state letter from /proc (R, S, T for stopped …). */
async function stateOf(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '?'
}

const incarnationOf = async (dataDir: string): Promise<number> =>
  (JSON.parse(await readFile(join(dataDir, 'identity.json'), 'utf8')) as { incarnation: number }).incarnation

describe('one peer per data dir', () => {
  it('a second peer on a running peer’s data dir refuses to start; a dead peer’s lock is taken over', async () => {
    const { party } = await newParty(1)
    await startParty(party, 1, 60_000)
    const p = party.peer(0)
    const pid = p.process?.pid as number
    assert.equal((await readFile(join(p.dataDir, 'peer.pid'), 'utf8')).split('\n')[0], String(pid))
    const before = await incarnationOf(p.dataDir)

    const second = await cli([
      'peer',
      '--host',
      '127.0.0.1',
      '--port',
      String(p.port),
      '--api-port',
      String(p.apiPort),
      '--data',
      p.dataDir,
      '--key-file',
      party.keyFile,
    ])
    assert.equal(second.code, 1, second.stderr)
    assert.match(second.stderr, /ERR_DATA_DIR_LOCKED: data dir .* is in use by another peer \(pid \d+\)/)
    assert.equal(await incarnationOf(p.dataDir), before, 'the refused start did not count as a start of the identity')
    assert.ok(party.isRunning(0), 'the running peer carries on')

    party.signal(0, 'SIGKILL')
    await party.exited(0)
    await party.start(0)
    await waitFor('the restarted peer to serve', async () => (await guestsOf(p.api)).status === 'guest', { timeoutMs: 60_000, intervalMs: 100 })
    assert.equal(await incarnationOf(p.dataDir), before + 1)
    assert.equal((await readFile(join(p.dataDir, 'peer.pid'), 'utf8')).split('\n')[0], String(party.peer(0).process?.pid))
  })

  it('a peer whose port is taken says so, stops what it started and leaves its data dir unlocked', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'houseparty-port-'))
    const taken = createSocket('udp4')
    await new Promise<void>((done) => taken.bind(0, '127.0.0.1', () => done()))
    try {
      const port = taken.address().port
      const failed = await cli(['peer', '--host', '127.0.0.1', '--port', String(port), '--api-port', String(port), '--data', dir, '--insecure'])
      assert.equal(failed.code, 1, failed.stderr)
      assert.match(failed.stderr, /EADDRINUSE|address already in use/i)
      assert.equal(existsSync(join(dir, 'peer.pid')), false, 'the data dir lock was released')
    } finally {
      taken.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('`houseparty signal` finds the peer by its data dir: STOP --for freezes it and it thaws by itself', async () => {
    const { party } = await newParty(1)
    await startParty(party, 1, 60_000)
    const p = party.peer(0)
    const pid = p.process?.pid as number
    const frozen = await cli(['signal', 'STOP', '--for', '2', '--data', p.dataDir])
    assert.equal(frozen.code, 0, frozen.stderr)
    assert.match(frozen.stdout, new RegExp(`SIGSTOP sent to the peer on .* \\(pid ${pid}\\); CONT in 2 s`))
    assert.equal(await stateOf(pid), 'T')
    await waitFor('the peer to thaw', async () => (await stateOf(pid)) !== 'T', { timeoutMs: 60_000, intervalMs: 100 })
    await waitFor('the thawed peer to answer', async () => (await guestsOf(p.api)).status === 'guest', { timeoutMs: 60_000, intervalMs: 100 })

    const bad = await cli(['signal', 'NOPE', '--data', p.dataDir])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /ERR_INVALID_ARGUMENT: unknown signal NOPE/)

    const killed = await cli(['signal', 'KILL', '--data', p.dataDir])
    assert.equal(killed.code, 0, killed.stderr)
    assert.equal(await party.exited(0), 'SIGKILL')
    const none = await cli(['signal', 'KILL', '--data', p.dataDir])
    assert.equal(none.code, 1)
    assert.match(none.stderr, /ERR_NOT_FOUND: no peer is running on /)
  })
})
