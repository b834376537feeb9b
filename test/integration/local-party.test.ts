import assert from 'node:assert/strict'
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { CLI, freeBasePort, guestsOf } from '../helpers/party.ts'
import { waitFor } from '../helpers/wait.ts'

/**
 * `houseparty party` (what `npm start` runs) as a user meets it: in its own
 * process group like a terminal's foreground job, Ctrl-C sent to the whole
 * group, a second launcher on the same directory, a peer that crashes.
 */
const run = promisify(execFile)

/**
 * This process's environment without HOUSEPARTY_* settings, nor what npm sets for a script (INIT_CWD, which the CLI
 * resolves local paths from, npm_*): a test never depends on how it was started.
 */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HOUSEPARTY_') && !k.startsWith('npm_') && k !== 'INIT_CWD'))
}

describe('the local party launcher', () => {
  const launched: ChildProcess[] = []
  let dir = ''
  after(async () => {
    for (const c of launched) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(-c.pid, 'SIGKILL')
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  const launch = (base: number, extra: string[] = ['--plain-http']): { child: ChildProcess; out: () => string } => {
    let out = ''
    // detached: its own process group, as a shell gives a foreground job; signals to -pid reach the whole group.
    const child = spawn(process.execPath, [CLI, 'party', '--peers', '3', '--base-port', String(base), '--data', dir, ...extra], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      // As `npm start` runs it: the commands it prints must then go through npm (no `houseparty` on PATH in a checkout).
      // The CLI alias it saves goes into this test's own configuration, never the user's.
      env: { ...cleanEnv(), npm_lifecycle_event: 'start', HOUSEPARTY_CONFIG: join(dir, 'cli.json') },
    })
    child.stdout?.on('data', (d) => {
      out += d
    })
    child.stderr?.on('data', (d) => {
      out += d
    })
    launched.push(child)
    return { child, out: () => out }
  }

  it('refuses a second launcher on the same directory, restarts a crashed peer and says so, and leaves gracefully on Ctrl-C', async () => {
    dir = await mkdtemp(join(tmpdir(), 'houseparty-launcher-'))
    const base = await freeBasePort(3)
    const first = launch(base)
    // The announcement comes in several writes, which may arrive apart: wait for its last line.
    await waitFor('the party to be on', () => /House Party is on: 3 guests[\s\S]*Ctrl-C here/.test(first.out()), { timeoutMs: 120_000, intervalMs: 100 })
    assert.match(first.out(), new RegExp(`Try, from another terminal:\\n {2}npm run houseparty -- put \\./some-file --peer 127\\.0\\.0\\.1:${base + 80} `))
    assert.match(first.out(), new RegExp(`aws --endpoint-url http://127\\.0\\.0\\.1:${base + 160} s3 mb`))

    const second = launch(base)
    const [code] = (await once(second.child, 'exit')) as [number]
    assert.equal(code, 1)
    assert.match(second.out(), /ERR_JOIN_FAILED: peer \d+ exited while starting: .*in use by another peer \(pid \d+\)/)
    assert.doesNotMatch(second.out(), /House Party is on/)
    assert.equal((await guestsOf(`127.0.0.1:${base + 80}`)).guests.length, 3, 'the first party is untouched')

    const pid = Number((await readFile(join(dir, 'peer-2', 'peer.pid'), 'utf8')).split('\n')[0])
    process.kill(pid, 'SIGKILL')
    await waitFor('the launcher to restart the crashed peer', () => /peer 2 started again \(pid \d+\) on its data dir/.test(first.out()), {
      timeoutMs: 120_000,
      intervalMs: 100,
    })
    assert.match(first.out(), new RegExp(`peer 2 \\(pid ${pid}\\) exited \\(SIGKILL\\); starting it again in 1 s`))
    await waitFor('the party to see it back', () => /\(peer 2\) (is back, start #2|joined)/.test(first.out()), { timeoutMs: 120_000, intervalMs: 100 })
    await waitFor('three guests again', async () => (await guestsOf(`127.0.0.1:${base + 82}`)).guests.length === 3, { timeoutMs: 120_000, intervalMs: 200 })

    // Ctrl-C in a terminal: SIGINT to the whole foreground process group.
    process.kill(-(first.child.pid as number), 'SIGINT')
    const [exit] = (await once(first.child, 'exit')) as [number]
    assert.equal(exit, 0)
    for (const i of [0, 1, 2]) {
      const log = await readFile(join(dir, `peer-${i}.log`), 'utf8')
      assert.match(log, /"msg":"left the party"|"msg":"leaving without confirmation"/, `peer ${i} left`)
      assert.doesNotMatch(log, /second signal/, `peer ${i} was asked to leave once`)
    }
  })

  it('runs peers in the zones and on the nodes it is given, and says how to lose a zone', async () => {
    if (dir) await rm(dir, { recursive: true, force: true })
    dir = await mkdtemp(join(tmpdir(), 'houseparty-launcher-'))
    const base = await freeBasePort(3)
    const party = launch(base, ['--zones', 'a,b', '--nodes', 'n1,n2,n3', '--plain-http'])
    await waitFor('the party to be on', () => /House Party is on: 3 guests[\s\S]*Ctrl-C here/.test(party.out()), { timeoutMs: 120_000, intervalMs: 100 })
    assert.match(party.out(), /ZONE\/NODE/)
    assert.match(party.out(), /\n0 +[0-9a-f]{16} +\d+ +a\/n1 /)
    assert.match(party.out(), /\n2 +[0-9a-f]{16} +\d+ +a\/n3 /)
    // Zone a holds peers 0 and 2.
    assert.match(party.out(), /kill -STOP \d+ \d+ +zone a lost \(kill -CONT \d+ \d+ brings it back\)/)
    const { guests } = (await guestsOf(`127.0.0.1:${base + 80}`)) as unknown as { guests: { domains: { zone?: string; node?: string } }[] }
    assert.deepEqual(guests.map((g) => `${g.domains.zone}/${g.domains.node}`).sort(), ['a/n1', 'a/n3', 'b/n2'])
    process.kill(-(party.child.pid as number), 'SIGINT')
    const [exit] = (await once(party.child, 'exit')) as [number]
    assert.equal(exit, 0)
  })

  it('by default serves HTTPS with a CA of its own and wants a token, and saves a CLI alias so the printed commands work as printed', async () => {
    if (dir) await rm(dir, { recursive: true, force: true })
    dir = await mkdtemp(join(tmpdir(), 'houseparty-launcher-'))
    const base = await freeBasePort(3)
    const party = launch(base, [])
    await waitFor('the party to be on', () => /House Party is on: 3 guests[\s\S]*Ctrl-C here/.test(party.out()), { timeoutMs: 120_000, intervalMs: 100 })
    const alias = `local-${base}`
    assert.match(party.out(), new RegExp(`APIs over HTTPS with the party's own CA .*saved as CLI alias ${alias} \\(the default\\)`))
    assert.match(party.out(), new RegExp(`https://127\\.0\\.0\\.1:${base + 80}`))
    assert.match(party.out(), /aws --endpoint-url https:\/\/127\.0\.0\.1:\d+ --ca-bundle \S+ca\.crt s3 mb/)
    // The printed commands, run as printed (the saved alias is the default of this test's configuration).
    const env = { ...cleanEnv(), HOUSEPARTY_CONFIG: join(dir, 'cli.json') }
    const cli = (...args: string[]) => run(process.execPath, [CLI, ...args], { env, cwd: dir })
    await writeFile(join(dir, 'some-file'), 'printed commands work\n')
    await cli('put', './some-file')
    assert.match((await cli('ls')).stdout, /some-file/)
    await cli('get', 'some-file', '-o', 'copy')
    assert.equal(await readFile(join(dir, 'copy'), 'utf8'), 'printed commands work\n')
    assert.match((await cli('guests')).stdout, /3 guests/)
    // Without the token, or in clear, the API answers nothing useful.
    const api = `127.0.0.1:${base + 80}`
    await assert.rejects(cli('ls', '--peer', `https://${api}`, '--ca-file', join(dir, 'ca.crt')), /ERR_UNAUTHORIZED/)
    await assert.rejects(fetch(`http://${api}/guests`))
    process.kill(-(party.child.pid as number), 'SIGINT')
    const [exit] = (await once(party.child, 'exit')) as [number]
    assert.equal(exit, 0)
  })
})
