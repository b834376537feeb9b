import { type ChildProcess, spawn } from 'node:child_process'
import { cpus, loadavg } from 'node:os'
import type { LocalParty } from '../src/cli/local-party.ts'
import { bytesOf, getBytes, putBytes, sha256 } from '../test/helpers/files.ts'
import { guestsOf, metric, startParty, sumMetric, waitForAgreement } from '../test/helpers/party.ts'
import { benchParty, machine, median, today } from './lib.ts'

interface RunResult {
  formMs: number
  joinProtocolMs: number[]
  /** Silence of the victim from its last word to the vote that declared it dead, as the voter measured it. */
  declaredMs: number
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

/** SIGKILLs `victim`; returns the time until every survivor's list is without it, and the silence at the death verdict. */
async function killAndTime(party: LocalParty, victim: number, alive: number[]): Promise<{ removedMs: number; declaredMs: number }> {
  const verdicts = async (): Promise<[number, number]> => [
    await sumMetric(party, alive, 'houseparty_death_detection_seconds_sum'),
    await sumMetric(party, alive, 'houseparty_death_detection_seconds_count'),
  ]
  const [sum0, count0] = await verdicts()
  const t0 = performance.now()
  party.signal(victim, 'SIGKILL')
  await waitForAgreement(party, alive, alive.length, 20_000)
  const removedMs = performance.now() - t0
  const [sum1, count1] = await verdicts()
  return { removedMs, declaredMs: count1 > count0 ? ((sum1 - sum0) / (count1 - count0)) * 1000 : Number.NaN }
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
    const death = await killAndTime(party, victim, alive)
    // Then the coordinator itself (the first guest): its successor must take over.
    const coordinator = (await guestsOf(party.peer(alive[0] ?? 0).api)).guests[0]?.address
    const cIndex = party.peers.find((p) => coordinator?.endsWith(`:${p.port}`))?.index ?? 0
    alive = alive.filter((i) => i !== cIndex)
    const coordinatorDeath = await killAndTime(party, cIndex, alive)
    return { formMs, joinProtocolMs, declaredMs: death.declaredMs, detectMs: death.removedMs, coordinatorDetectMs: coordinatorDeath.removedMs }
  } finally {
    await cleanup()
  }
}

interface LoadResult {
  minutes: number
  peers: number
  burners: number
  load: { min: number; median: number; max: number }
  ops: number
  bad: number
  events: Record<string, number>
  worstLagMs: number
  detectUnderLoadMs: number
}

const LOAD_EVENTS = [
  'vote_dead',
  'guest_removed',
  'suspected',
  'vote_alive',
  'vote_inconclusive',
  'vote_abstained',
  'removal_refuted',
  'pause_detected',
] as const

/**
 * False deaths under heavy load: 8 peers with put/get traffic beside four
 * busy-spinning processes per core, for HOUSEPARTY_BENCH_LOAD_MINUTES
 * (default 10). Counts guests voted dead while every peer was alive, then,
 * still under load, SIGKILLs one to show detection slows but works.
 */
async function falseDeathsUnderLoad(): Promise<LoadResult> {
  const minutes = Number(process.env.HOUSEPARTY_BENCH_LOAD_MINUTES ?? 10)
  const peers = 8
  const { party, cleanup } = await benchParty(peers)
  const burners: ChildProcess[] = []
  try {
    await startParty(party, peers, 60_000)
    const all = [...Array(peers).keys()]
    for (let i = 0; i < 4 * cpus().length; i++) burners.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }))
    const end = Date.now() + minutes * 60_000
    const loads: number[] = []
    let worstLagMs = 0
    let ops = 0
    let bad = 0
    const sampler = (async () => {
      while (Date.now() < end) {
        await new Promise((r) => setTimeout(r, 10_000))
        loads.push(loadavg()[0] ?? 0)
        for (const i of all) worstLagMs = Math.max(worstLagMs, 1000 * (await metric(party.peer(i).api, 'houseparty_event_loop_lag_seconds').catch(() => 0)))
      }
    })()
    // Two clients putting and reading back files of up to 4 MiB, each read checked by sha256.
    const client = async (c: number): Promise<void> => {
      for (let n = 0; Date.now() < end; n++) {
        const data = bytesOf(64 * 1024 + ((n * 7919) % (4 * 1024 * 1024)), c * 100_000 + n)
        const name = `load/${c}/${n % 20}`
        try {
          const put = await putBytes(party.peer((c + n) % peers).api, name, data)
          const got = put.status === 201 ? await getBytes(party.peer((c + n + 3) % peers).api, name) : undefined
          if (got?.status !== 200 || sha256(got.body) !== sha256(data)) bad++
          ops += 2
        } catch {
          bad++
        }
      }
    }
    await Promise.all([client(0), client(1), sampler])
    const events: Record<string, number> = {}
    for (const e of LOAD_EVENTS) events[e] = await sumMetric(party, all, 'houseparty_membership_events_total', `event="${e}"`)
    // Still under load: a real death is still found, only later.
    const victim = 5
    const t0 = performance.now()
    party.signal(victim, 'SIGKILL')
    await waitForAgreement(
      party,
      all.filter((i) => i !== victim),
      peers - 1,
      120_000,
    )
    const detectUnderLoadMs = performance.now() - t0
    const sorted = [...loads].sort((a, b) => a - b)
    return {
      minutes,
      peers,
      burners: burners.length,
      load: { min: sorted[0] ?? 0, median: median(loads), max: sorted.at(-1) ?? 0 },
      ops,
      bad,
      events,
      worstLagMs,
      detectUnderLoadMs,
    }
  } finally {
    for (const b of burners) b.kill('SIGKILL')
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
      `| ${n} | ${f(median(results.map((r) => r.formMs)))} | ${Math.round(median(results.flatMap((r) => r.joinProtocolMs)))} ms | ${Math.round(Math.max(...results.flatMap((r) => r.joinProtocolMs)))} ms | ${f(median(results.map((r) => r.declaredMs)))} | ${f(Math.max(...results.map((r) => r.declaredMs)))} | ${f(median(results.map((r) => r.detectMs)))} | ${f(Math.max(...results.map((r) => r.detectMs)))} | ${f(median(results.map((r) => r.coordinatorDetectMs)))} |`,
    )
  }
  const load = await falseDeathsUnderLoad()
  const e = load.events
  return `## Membership (${today()})

Machine: ${machine()}. Default timings (ping every 200 ms, suspect after 1 s of silence, 450 ms vote).
Medians of ${runs} runs per size. All peers are started at the same moment and join through peer 0.

| peers | party formed (spawn → identical lists everywhere) | join protocol per peer, median | slowest join | SIGKILL → declared dead (silence at the verdict), median | worst | SIGKILL → removed on every survivor, median | worst | coordinator SIGKILLed → removed, median |
|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

"Party formed" includes starting every Node process on 2 cores; "join protocol" is from a peer's own 'peer started' log line to its admission.
"Declared dead" is the victim's silence, from its last word (up to a ping interval before the kill) to the vote that found it dead, as \`houseparty_death_detection_seconds\` records it;
"removed" adds the view change and is timed by polling every survivor's \`GET /guests\`.

### False deaths under load

${load.peers} peers with put/get traffic (two clients, files up to 4 MiB, every read checked by sha256) beside ${load.burners} busy-spinning
processes (four per core), for ${load.minutes} minutes. Load average (1 min) sampled every 10 s: min ${load.load.min.toFixed(1)}, median ${load.load.median.toFixed(1)}, max ${load.load.max.toFixed(1)}.

| deaths declared / minutes under load | guests removed | suspicions | voted alive | inconclusive | abstentions | removals refuted | pauses detected | worst event-loop lag a peer reported | puts and gets (failed) |
|---|---|---|---|---|---|---|---|---|---|
| ${e.vote_dead} / ${load.minutes} | ${e.guest_removed} | ${e.suspected} | ${e.vote_alive} | ${e.vote_inconclusive} | ${e.vote_abstained} | ${e.removal_refuted} | ${e.pause_detected} | ${load.worstLagMs.toFixed(0)} ms | ${load.ops} (${load.bad}) |

Still under that load, a peer SIGKILLed at the end was removed from every survivor's list ${(load.detectUnderLoadMs / 1000).toFixed(1)} s later (idle: the table above).
`
}
