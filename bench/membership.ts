import { spawn } from 'node:child_process'
import type { LocalParty } from '../src/cli/local-party.ts'
import { guestsOf, metric, startParty, waitForAgreement } from '../test/helpers/party.ts'
import { benchParty, machine, median, today } from './lib.ts'

interface RunResult {
  formMs: number
  joinProtocolMs: number[]
  detectMs: number
  coordinatorDetectMs: number
}

/** Admission time as the peer itself logged it: from 'peer started' to its first guest list. */
async function joinLatencies(party: LocalParty, n: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 1; i < n; i++) {
    const lines = (await party.readLog(i))
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; time: number })
    const started = lines.find((l) => l.msg === 'peer started')?.time
    const admitted = lines.find((l) => l.msg === 'guest list changed')?.time
    if (started !== undefined && admitted !== undefined) out.push(admitted - started)
  }
  return out
}

async function killAndTime(party: LocalParty, victim: number, alive: number[]): Promise<number> {
  const t0 = performance.now()
  party.signal(victim, 'SIGKILL')
  await waitForAgreement(party, alive, alive.length, 20_000)
  return performance.now() - t0
}

async function oneRun(n: number): Promise<RunResult> {
  const { party, cleanup } = await benchParty(n)
  try {
    const t0 = performance.now()
    await startParty(party, n, 60_000)
    const formMs = performance.now() - t0
    const joinProtocolMs = await joinLatencies(party, n)
    const victim = 1 + Math.floor(Math.random() * (n - 1))
    let alive = [...Array(n).keys()].filter((i) => i !== victim)
    const detectMs = await killAndTime(party, victim, alive)
    // Then the coordinator itself (the first guest): its successor must take over.
    const coordinator = (await guestsOf(party.peer(alive[0] ?? 0).api)).guests[0]?.address
    const cIndex = party.peers.find((p) => coordinator?.endsWith(`:${p.port}`))?.index ?? 0
    alive = alive.filter((i) => i !== cIndex)
    const coordinatorDetectMs = await killAndTime(party, cIndex, alive)
    return { formMs, joinProtocolMs, detectMs, coordinatorDetectMs }
  } finally {
    await cleanup()
  }
}

async function underLoad(): Promise<{ suspicions: number; removals: number; burnMs: number }> {
  const { party, cleanup } = await benchParty(10)
  try {
    await startParty(party, 10, 60_000)
    const burnMs = 15_000
    const burners = Array.from({ length: 4 }, () =>
      spawn(process.execPath, ['-e', `const e = Date.now() + ${burnMs}; while (Date.now() < e) Math.sqrt(Math.random())`], { stdio: 'ignore' }),
    )
    await Promise.all(burners.map((b) => new Promise((r) => b.once('exit', r))))
    let suspicions = 0
    let removals = 0
    for (const p of party.peers) {
      suspicions += await metric(p.api, 'houseparty_membership_events_total', 'event="suspected"')
      removals += await metric(p.api, 'houseparty_membership_events_total', 'event="vote_dead"')
    }
    return { suspicions, removals, burnMs }
  } finally {
    await cleanup()
  }
}

export async function membershipBench(runs = 3): Promise<string> {
  const rows: string[] = []
  for (const n of [5, 10, 20]) {
    const results: RunResult[] = []
    for (let r = 0; r < runs; r++) {
      results.push(await oneRun(n))
      process.stderr.write(`membership: ${n} peers, run ${r + 1}/${runs} done\n`)
    }
    const f = (x: number): string => `${(x / 1000).toFixed(2)} s`
    rows.push(
      `| ${n} | ${f(median(results.map((r) => r.formMs)))} | ${Math.round(median(results.flatMap((r) => r.joinProtocolMs)))} ms | ${Math.round(Math.max(...results.flatMap((r) => r.joinProtocolMs)))} ms | ${f(median(results.map((r) => r.detectMs)))} | ${f(Math.max(...results.map((r) => r.detectMs)))} | ${f(median(results.map((r) => r.coordinatorDetectMs)))} |`,
    )
  }
  const load = await underLoad()
  return `## Membership (${today()})

Machine: ${machine()}. Default timings (ping every 200 ms, suspect after 1 s of silence, 450 ms vote).
Medians of ${runs} runs per size. All peers are started at the same moment and join through peer 0.

| peers | party formed (spawn → identical lists everywhere) | join protocol per peer, median | slowest join | SIGKILL → removed on every survivor, median | worst | coordinator SIGKILLed → removed, median |
|---|---|---|---|---|---|---|
${rows.join('\n')}

"Party formed" includes starting every Node process on 2 cores; "join protocol" is from a peer's own 'peer started' log line to its admission.
Under load: 10 peers and 4 CPU-burning processes on 2 cores for ${load.burnMs / 1000} s: ${load.suspicions} suspicions, ${load.removals} peers voted dead.
`
}
