import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { LocalParty } from '../src/cli/local-party.ts'
import { BUILT_CLI, freeBasePort, startParty } from '../test/helpers/party.ts'
import { expectedHash, leanGetHash, put } from './files.ts'
import { machineCpuSeconds } from './gluster.ts'
import { machine, median, today } from './lib.ts'

const run = promisify(execFile)
const MiB = 1024 * 1024
const GiB = 1024 * MiB
const PEERS = 5
const ROUNDS = 3
const TOP = 16

/** CPU-seconds (user + system, every thread) a process has used, from /proc. */
async function processCpu(pid: number | undefined): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100
}

const clientCpu = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

interface Roles {
  coordinator: number[]
  holders: number[]
  client: number[]
  rest: number[]
  total: number[]
}

/**
 * Where the CPU goes for large files, measured from outside: `perf record
 * -a` samples every CPU of the machine at 997 Hz while ROUNDS 1 GiB puts run
 * (one phase) and ROUNDS gets (the other), and /proc says how much CPU each
 * role used: the peer that took the request (coordinator), the others
 * (holders), the client, and everything else (kernel threads, the page
 * cache's writeback). A V8 profile (--cpu-prof) is not used: it samples a
 * thread by wall clock, so on two busy cores it counts time a peer waits to
 * be scheduled as time spent where it stopped.
 */
export async function largeProfileBench(): Promise<string> {
  const perf = await run('perf', ['--version']).then(
    () => undefined,
    (err: Error) => `perf is not installed (${err.message.split('\n')[0]}); Debian: apt-get install linux-perf`,
  )
  if (perf) return `## Where the CPU goes: large files\n\n${today()}: not measured: ${perf}\n`
  const dir = await mkdtemp(join(tmpdir(), 'houseparty-large-profile-'))
  const blocks = Array.from({ length: 16 }, () => randomBytes(MiB))
  const want = expectedHash(GiB, blocks)
  // --perf-basic-prof: V8 writes /tmp/perf-PID.map, which names the compiled JavaScript in perf's samples.
  const party = new LocalParty({
    dir,
    basePort: await freeBasePort(PEERS),
    cli: BUILT_CLI,
    peerArgs: ['--log-level', 'warn'],
    env: { NODE_OPTIONS: '--perf-basic-prof' },
  })
  await party.prepare()
  const pids = () => Array.from({ length: PEERS }, (_, i) => party.peer(i).process?.pid)
  try {
    await startParty(party, PEERS, 60_000)
    const phase = async (name: 'put' | 'get'): Promise<string> => {
      const roles: Roles = { coordinator: [], holders: [], client: [], rest: [], total: [] }
      const data = join(dir, `${name}.perf`)
      const recorder = spawn('perf', ['record', '-a', '-F', '997', '-o', data], { stdio: 'ignore' })
      await delayUntilRecording(recorder)
      for (let r = 0; r < ROUNDS; r++) {
        const coordinator = name === 'put' ? r % PEERS : (r + 1) % PEERS
        const before = await Promise.all(pids().map(processCpu))
        const [machine0, client0] = [await machineCpuSeconds(), clientCpu()]
        if (name === 'put') await put(party.peer(coordinator).api, 'bench/1GiB', GiB, blocks)
        else if ((await leanGetHash(party.peer(coordinator).api, 'bench/1GiB')) !== want) throw new Error('a get returned other bytes')
        const after = await Promise.all(pids().map(processCpu))
        const used = after.map((x, i) => x - (before[i] ?? 0))
        const total = (await machineCpuSeconds()) - machine0
        const client = clientCpu() - client0
        const peers = used.reduce((a, b) => a + b, 0)
        roles.coordinator.push(used[coordinator] ?? 0)
        roles.holders.push(peers - (used[coordinator] ?? 0))
        roles.client.push(client)
        roles.rest.push(total - peers - client)
        roles.total.push(total)
      }
      recorder.kill('SIGINT')
      await once(recorder, 'exit')
      return summarize(name, roles, await topSymbols(data, new Set(pids()), process.pid))
    }
    const puts = await phase('put')
    const gets = await phase('get')
    return `## Where the CPU goes: large files

${today()}, ${machine()}. \`npm run bench -- large-profile\`: ${PEERS} local peers (2+1), ${ROUNDS} puts of a 1 GiB file, each through another
peer, then ${ROUNDS} gets (read as in the files bench), with \`perf record -a\` sampling both cores at 997 Hz and /proc counting each
process's CPU. CPU-seconds per GiB by role are medians over the rounds; symbols are shares of every busy sample of a phase
(idle left out), by thread: \`MainThread\` is a process's event loop, \`WorkerThread\` the coding worker, \`V8Worker\` V8's garbage
collection helpers, \`libuv-worker\` file I/O, \`[k]\` the kernel on that thread's behalf. A V8 profile (\`--cpu-prof\`) is not used:
it samples by wall clock, so on two busy cores it counts the time a peer waits to be scheduled as time spent where it stopped.

${puts}

${gets}
`
  } finally {
    await party.stopAll(10_000)
    await rm(dir, { recursive: true, force: true })
    for (const pid of pids()) await rm(`/tmp/perf-${pid}.map`, { force: true })
  }
}

/** perf needs a moment to start sampling every CPU: waits until it has written its file header, or 2 s. */
async function delayUntilRecording(recorder: ChildProcess): Promise<void> {
  await Promise.race([new Promise((r) => setTimeout(r, 1_000)), once(recorder, 'exit')])
}

interface SymbolRow {
  who: string
  thread: string
  symbol: string
  samples: number
}

/** The busiest symbols of a perf recording, each with whose process it ran in (a peer, the client, other) and on which thread. */
async function topSymbols(data: string, peers: Set<number | undefined>, client: number): Promise<{ rows: SymbolRow[]; busy: number }> {
  const { stdout } = await run('perf', ['script', '-i', data, '-F', 'comm,pid,ip,sym,dso'], { maxBuffer: 256 * MiB })
  const counts = new Map<string, SymbolRow>()
  let busy = 0
  for (const line of stdout.split('\n')) {
    const m = /^\s*(.+?)\s+(\d+)\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$/.exec(line)
    if (!m) continue
    const [, thread = '', pidText = '', rawSymbol = '', dso = ''] = m
    if (thread === 'swapper') continue
    busy++
    const pid = Number(pidText)
    const who = peers.has(pid) ? 'peer' : pid === client ? 'client' : 'other'
    const kernel = dso.includes('kernel')
    const symbol = `${kernel ? '[k] ' : ''}${rawSymbol.replace(/\+0x[0-9a-f]+$/, '') || '(unknown)'}`
    const key = `${who}\0${thread}\0${symbol}`
    const row = counts.get(key) ?? { who, thread, symbol, samples: 0 }
    row.samples++
    counts.set(key, row)
  }
  return { rows: [...counts.values()].sort((a, b) => b.samples - a.samples).slice(0, TOP), busy }
}

function summarize(name: 'put' | 'get', roles: Roles, top: { rows: SymbolRow[]; busy: number }): string {
  const s = (xs: number[]): string => median(xs).toFixed(2)
  const symbols = top.rows.map((r) => `| ${r.who} | ${r.thread} | \`${r.symbol.slice(0, 90)}\` | ${((100 * r.samples) / top.busy).toFixed(1)}% |`)
  return `${name === 'put' ? 'Puts' : 'Gets'}: CPU-seconds per GiB by role (median of ${ROUNDS}).

| coordinator (the peer asked) | holders (the other peers) | client | everything else | all |
|---|---|---|---|---|
| ${s(roles.coordinator)} | ${s(roles.holders)} | ${s(roles.client)} | ${s(roles.rest)} | ${s(roles.total)} |

The ${TOP} busiest symbols (${top.busy} busy samples):

| process | thread | symbol | share |
|---|---|---|---|
${symbols.join('\n')}`
}
