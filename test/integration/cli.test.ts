import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { LocalParty } from '../../src/cli/local-party.ts'
import { bytesOf, sha256 } from '../helpers/files.ts'
import { CLI, partiesForThisFile, startParty } from '../helpers/party.ts'

/**
 * The CLI as a user runs it, against a real party of 3 peers: names sent
 * exactly, paths from where the user is, recursive transfers, browsing,
 * checks with exit statuses, mirror both ways, aliases, --json, completion.
 */
const newParty = partiesForThisFile()
const ROOT = resolve(import.meta.dirname, '../..')

interface Run {
  code: number
  stdout: string
  stderr: string
}

describe('the houseparty CLI', () => {
  let party: LocalParty
  let home: string
  let api: string

  /** Runs the CLI from the checkout, as `npm run houseparty --` does (INIT_CWD says where the user is). */
  const cli = (args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Run> =>
    new Promise((done) => {
      const child = execFile(
        process.execPath,
        [CLI, ...args],
        {
          cwd: ROOT,
          env: { ...process.env, HOUSEPARTY_PEER: api, HOUSEPARTY_CONFIG: join(home, 'config.json'), INIT_CWD: options.cwd ?? home, ...options.env },
          maxBuffer: 64 * 1024 * 1024,
          timeout: 120_000,
        },
        (err, stdout, stderr) => done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
      )
      child.stdin?.end(options.input ?? '')
    })
  const ok = async (args: string[], options?: Parameters<typeof cli>[1]): Promise<Run> => {
    const r = await cli(args, options)
    assert.equal(r.code, 0, `houseparty ${args.join(' ')} failed: ${r.stderr}`)
    return r
  }
  const fails = async (args: string[], code: RegExp, options?: Parameters<typeof cli>[1]): Promise<Run> => {
    const r = await cli(args, options)
    assert.notEqual(r.code, 0, `houseparty ${args.join(' ')} should fail`)
    assert.match(r.stderr, code)
    return r
  }

  before(async () => {
    ;({ party } = await newParty(3))
    await startParty(party, 3, 60_000)
    api = party.peer(1).api
    home = await mkdtemp(join(tmpdir(), 'houseparty-cli-'))
  })
  after(async () => {
    await rm(home, { recursive: true, force: true })
  })

  it('sends names exactly: the peer’s ERR_BAD_NAME reaches the user; paths are the user’s', async () => {
    await writeFile(join(home, 'note.txt'), 'a note\n')
    for (const name of ['docs/../sneaky.txt', 'a/./b.txt', '../../etc/passwd', 'a//b', '/abs']) {
      await fails(['put', 'note.txt', '--name', name], /ERR_BAD_NAME: invalid file name/)
    }
    // Relative to where the user is (INIT_CWD), not the checkout the CLI runs from.
    await mkdir(join(home, 'sub'), { recursive: true })
    const put = await ok(['put', '../note.txt', '--name', 'exact/note.txt'], { cwd: join(home, 'sub') })
    assert.match(put.stdout, /^exact\/note\.txt\t7\t/)
    await ok(['get', 'exact/note.txt', '-o', 'back.txt'], { cwd: join(home, 'sub') })
    assert.equal(await readFile(join(home, 'sub', 'back.txt'), 'utf8'), 'a note\n')
  })

  it('says what is wrong: a directory without -r, a missing file, nobody at --peer, a file that would be overwritten', async () => {
    await fails(['put', '.'], /ERR_INVALID_ARGUMENT: .* is a directory; put it with --recursive/)
    await fails(['put', 'nope.txt'], /ERR_NOT_FOUND: no such file or directory: .*nope\.txt/)
    const closed = await new Promise<number>((done) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as AddressInfo
        s.close(() => done(port))
      })
    })
    await fails(
      ['ls', '--peer', `127.0.0.1:${closed}`],
      /ERR_PARTY_UNREACHABLE: cannot reach a peer API at http:\/\/127\.0\.0\.1:\d+ \(connection refused\).*Check --peer/,
    )
    await writeFile(join(home, 'mine.txt'), 'mine')
    await fails(['get', 'exact/note.txt', '-o', 'mine.txt'], /ERR_EXISTS: .*mine\.txt exists; --force overwrites it, --no-clobber skips it/)
    assert.equal(await readFile(join(home, 'mine.txt'), 'utf8'), 'mine', 'untouched')
    const skipped = await ok(['get', 'exact/note.txt', '-o', 'mine.txt', '--no-clobber'])
    assert.match(skipped.stderr, /skipped exact\/note\.txt/)
    await ok(['get', 'exact/note.txt', '-o', 'mine.txt', '--force'])
    assert.equal(await readFile(join(home, 'mine.txt'), 'utf8'), 'a note\n')
    await fails(['get', 'no/such/file'], /ERR_FILE_NOT_FOUND/)
  })

  it('puts and gets directories recursively, lists a level or all, stats, sums up, copies, moves, removes', async () => {
    const tree = join(home, 'tree')
    const files: Record<string, Buffer> = { 'a.bin': bytesOf(300_000, 1), 'sub/b.bin': bytesOf(70_000, 2), 'sub/deeper/c.txt': Buffer.from('c\n') }
    for (const [rel, data] of Object.entries(files)) {
      await mkdir(join(tree, rel, '..'), { recursive: true })
      await writeFile(join(tree, rel), data)
    }
    const put = await ok(['put', '-r', 'tree', '--prefix', 'proj', '--json'])
    const stored = JSON.parse(put.stdout) as { done: { name: string; hash: string }[] }
    assert.deepEqual(stored.done.map((d) => d.name).sort(), ['proj/tree/a.bin', 'proj/tree/sub/b.bin', 'proj/tree/sub/deeper/c.txt'])
    // --no-clobber: nothing new stored.
    const again = JSON.parse((await ok(['put', '-r', 'tree', '--prefix', 'proj', '--no-clobber', '--json'])).stdout) as { done: unknown[]; skipped: unknown[] }
    assert.deepEqual([again.done.length, again.skipped.length], [0, 3])

    const top = await ok(['ls', 'proj/tree'])
    assert.match(top.stdout, /^3 files/)
    assert.match(top.stdout, /proj\/tree\/a\.bin\s+293\.0 KiB\s+ok\s+3\/3\s+2\+1/)
    assert.match(top.stdout, /proj\/tree\/sub\/\s+68\.4 KiB\s+2 files/)
    const all = JSON.parse((await ok(['ls', 'proj', '-r', '--json'])).stdout) as { entries: { name: string; type: string }[] }
    assert.deepEqual(all.entries.filter((e) => e.type === 'file').length, 3)

    const st = JSON.parse((await ok(['stat', 'proj/tree/a.bin', '--json'])).stdout) as { size: number; hash: string; holders: unknown[]; health: string }
    assert.deepEqual([st.size, st.hash, st.holders.length, st.health], [300_000, sha256(files['a.bin'] as Buffer), 3, 'ok'])
    assert.match((await ok(['stat', 'proj/tree/a.bin'])).stdout, /holders\nFRAGMENT\s+KIND\s+GUEST\s+LIVE/)
    const du = JSON.parse((await ok(['du', 'proj/tree', '--json'])).stdout) as { total: { files: number; bytes: number } }
    assert.deepEqual([du.total.files, du.total.bytes], [3, 370_002])

    await ok(['get', '-r', 'proj/tree/sub', '-o', 'out'])
    assert.equal(sha256(await readFile(join(home, 'out', 'sub', 'b.bin'))), sha256(files['sub/b.bin'] as Buffer))
    assert.equal(await readFile(join(home, 'out', 'sub', 'deeper', 'c.txt'), 'utf8'), 'c\n')
    assert.equal((await ok(['cat', 'proj/tree/sub/deeper/c.txt', 'exact/note.txt'])).stdout, 'c\na note\n')

    await ok(['cp', '-r', 'proj/tree/sub', 'copy'])
    await ok(['mv', 'copy/deeper/c.txt', 'moved/c.txt'])
    const names = (JSON.parse((await ok(['ls', '-r', '--json'])).stdout) as { entries: { name: string }[] }).entries.map((e) => e.name)
    assert.ok(names.includes('copy/b.bin') && names.includes('moved/c.txt') && !names.includes('copy/deeper/c.txt'), names.join(' '))
    assert.equal((await ok(['cat', 'moved/c.txt'])).stdout, 'c\n')
    await ok(['rm', '-r', 'copy', 'moved'])
    const left = (JSON.parse((await ok(['ls', '-r', '--json'])).stdout) as { entries: { name: string }[] }).entries.map((e) => e.name)
    assert.ok(!left.some((n) => n.startsWith('copy/') || n.startsWith('moved/')), left.join(' '))
  })

  it('checks: health with an exit status, verify reads every file back', async () => {
    const health = await cli(['health', '--json'])
    assert.equal(health.code, 0, health.stderr)
    assert.equal((JSON.parse(health.stdout) as { verdict: string }).verdict, 'healthy')
    assert.match((await ok(['health'])).stdout, /^healthy: \d+ files, \d+ at full redundancy, 0 degraded, 0 lost; 3 of 3 guests answered/)
    const verified = JSON.parse((await ok(['verify', '--all', '--json'])).stdout) as { checked: number; failed: number }
    assert.ok(verified.checked >= 4 && verified.failed === 0, JSON.stringify(verified))
    const bad = await cli(['verify', 'exact/note.txt', 'not/there'])
    assert.equal(bad.code, 1)
    assert.match(bad.stdout, /OK {6}exact\/note\.txt\nFAILED {2}not\/there: ERR_FILE_NOT_FOUND/)
  })

  it('mirrors a directory to the party and back, by hash: a second run changes nothing', async () => {
    const src = join(home, 'site')
    await mkdir(join(src, 'css'), { recursive: true })
    await writeFile(join(src, 'index.html'), '<h1>hi</h1>\n')
    await writeFile(join(src, 'css', 'site.css'), 'h1 { color: red }\n')
    assert.match((await ok(['mirror', 'push', 'site', 'www'])).stdout, /2 changes, 0 unchanged/)
    assert.match((await ok(['mirror', 'push', 'site', 'www'])).stdout, /^0 changes, 2 unchanged/)
    await writeFile(join(src, 'index.html'), '<h1>hello</h1>\n')
    await rm(join(src, 'css', 'site.css'))
    const plan = await ok(['mirror', 'push', 'site', 'www', '--remove', '--dry-run'])
    assert.match(plan.stdout, /would update www\/index\.html\nwould remove www\/css\/site\.css\n2 changes planned, 0 unchanged/)
    await ok(['mirror', 'push', 'site', 'www', '--remove'])
    await ok(['mirror', 'pull', 'www', 'copy-of-site'])
    assert.equal(await readFile(join(home, 'copy-of-site', 'index.html'), 'utf8'), '<h1>hello</h1>\n')
    assert.equal(existsSync(join(home, 'copy-of-site', 'css', 'site.css')), false)
    assert.match((await ok(['mirror', 'pull', 'www', 'copy-of-site'])).stdout, /^0 changes, 1 unchanged/)
  })

  it('aliases: saved addresses and tokens, flags and environment still win; ambiguous guest prefixes list their guests', async () => {
    await ok(['alias', 'set', 'here', `http://${party.peer(2).api}`, '--token', 'sekrit'])
    const list = await ok(['alias', 'ls', '--json'])
    assert.deepEqual(JSON.parse(list.stdout), [{ name: 'here', url: `http://${party.peer(2).api}`, token: true, default: true }])
    assert.doesNotMatch(list.stdout, /sekrit/)
    const mode = (await import('node:fs')).statSync(join(home, 'config.json')).mode & 0o777
    assert.equal(mode, 0o600, 'the file with tokens is private')
    // The default alias, with no --peer and no HOUSEPARTY_PEER.
    const guests = JSON.parse((await ok(['guests', '--json'], { env: { HOUSEPARTY_PEER: undefined } })).stdout) as { self: string }
    const viaPeer2 = JSON.parse((await ok(['guests', '--json', '--peer', party.peer(2).api])).stdout) as { self: string }
    assert.equal(guests.self, viaPeer2.self)
    const viaEnv = JSON.parse((await ok(['guests', '--json'])).stdout) as { self: string }
    assert.notEqual(viaEnv.self, guests.self, 'HOUSEPARTY_PEER beats the default alias')
    assert.equal((JSON.parse((await ok(['guests', '--json', '--peer', 'here'])).stdout) as { self: string }).self, guests.self)
    await fails(['guests', '--peer', 'nosuch'], /ERR_INVALID_ARGUMENT: no alias "nosuch"/)
    await fails(['peer-contents', ''], /ERR_INVALID_ARGUMENT: {2}?matches 3 guests: [0-9a-f]+ \(127\.0\.0\.1:\d+\), /)
    const one = await ok(['peer-contents', guests.self.slice(0, 8)])
    assert.match(one.stdout, new RegExp(`guest ${guests.self}: \\d+ fragments?, `))
    await ok(['alias', 'rm', 'here'])
  })

  it('ui puts a file, asks before storing over one or overwriting a local file, and removes one', async () => {
    await writeFile(join(home, 'ui.txt'), 'from the ui\n')
    const first = await ok(['ui'], { input: '5\nui.txt\nui/put.txt\nq\n' })
    assert.match(first.stdout, /stored ui\/put\.txt: 12 B, sha256 [0-9a-f]{64}, version /)
    const again = await ok(['ui'], { input: '5\nui.txt\nui/put.txt\nn\nq\n' })
    assert.match(again.stdout, /the party has ui\/put\.txt; store a new version over it\? \[y\/N\]: kept the party file/)
    const names = (JSON.parse((await ok(['ls', '-r', '--json'])).stdout) as { entries: { name: string }[] }).entries.map((e) => e.name)
    const listed = ((await (await fetch(`http://${api}/files`)).json()) as { files: { name: string }[] }).files.map((f) => f.name)
    assert.ok(names.includes('ui/put.txt'))
    const pick = listed.indexOf('ui/put.txt') + 1
    const kept = await ok(['ui'], { input: `4\n${pick}\nui.txt\nn\nq\n` })
    assert.match(kept.stdout, /ui\.txt exists; overwrite it\? \[y\/N\]: kept the local file/)
    const removed = await ok(['ui'], { input: `6\n${pick}\ny\nq\n` })
    assert.match(removed.stdout, /removed ui\/put\.txt/)
    await fails(['stat', 'ui/put.txt'], /ERR_FILE_NOT_FOUND/)
  })

  it('completion scripts come from the command definitions and complete in bash', async () => {
    const script = (await ok(['completion', 'bash'])).stdout
    const file = join(home, 'completion.bash')
    await writeFile(file, script)
    const complete = (words: string[]): Promise<string> =>
      new Promise((done, fail) =>
        execFile(
          'bash',
          [
            '-c',
            `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _houseparty_complete; echo "\${COMPREPLY[@]}"`,
          ],
          { cwd: home },
          (err, stdout) => (err ? fail(err) : done(stdout.trim())),
        ),
      )
    assert.deepEqual((await complete(['houseparty', 'mi'])).split(' '), ['mirror'])
    assert.deepEqual((await complete(['houseparty', 'mirror', 'p'])).split(' ').sort(), ['pull', 'push'])
    assert.match(await complete(['houseparty', 'get', '--no-c']), /--no-clobber/)
    assert.match((await ok(['completion', 'zsh'])).stdout, /^autoload -U \+X bashcompinit && bashcompinit\n/)
    await fails(['completion', 'fish'], /ERR_INVALID_ARGUMENT/)
  })
})
