import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitForAgreement } from '../test/helpers/party.ts'
import { summarize } from './cpu-profile.ts'
import { benchParty, machine, median, today } from './lib.ts'
import { putAll, sample } from './scale.ts'

const PEERS = 5
const FILES = 4_000
/**
 * Puts made before the CPU is counted: the first puts of a peer's life also pay for compiling what they run
 * (V8's optimizing tiers, zod's checks of the protocol's messages), about 0.6 ms per put over the first 4,000.
 */
const WARM_UP = 1_500

/**
 * Where the CPU of a burst of small puts goes: 5 peers run with --cpu-prof,
 * 1,500 files of 1–8 KiB are put by 16 clients to warm them up, then 4,000
 * more, and the profiles of the peers are summed by module
 * (bench/cpu-profile.ts). The CPU each put costs the whole party comes from
 * the peers' own CPU counters around the second burst.
 */
export async function smallProfileBench(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'houseparty-prof-'))
  const before = process.env.NODE_OPTIONS
  // The peers inherit it when they are spawned; this process is not profiled.
  process.env.NODE_OPTIONS = `${before ?? ''} --cpu-prof --cpu-prof-dir=${dir}`.trim()
  const { party, cleanup } = await benchParty(PEERS, ['--log-level', 'warn', '--on-stop', 'restart'])
  let rates: number[]
  let cpuMsPerPut: number
  try {
    const all = [...Array(PEERS).keys()]
    await Promise.all(all.map((i) => party.start(i, i === 0 ? [] : [0])))
    if (before === undefined) delete process.env.NODE_OPTIONS
    else process.env.NODE_OPTIONS = before
    await waitForAgreement(party, all, PEERS)
    const cpu = async (): Promise<number> =>
      (await Promise.all(all.map((i) => sample(party.peer(i).api, 'houseparty_process_process_cpu_seconds_total')))).reduce((a, b) => a + b, 0)
    await putAll(party, WARM_UP, FILES)
    const cpuBefore = await cpu()
    rates = (await putAll(party, FILES)).quarters
    cpuMsPerPut = (((await cpu()) - cpuBefore) * 1000) / FILES
  } finally {
    // SIGTERM with --on-stop restart, and time to go: a peer writes its profile as it exits (not if killed).
    await party.stopAll(30_000)
    await cleanup()
  }
  const table = await summarize(dir)
  await rm(dir, { recursive: true, force: true })
  return `## Where a small put's CPU goes

${today()}, ${machine()}. ${PEERS} local peers (2+1) run with \`--cpu-prof\`; ${WARM_UP.toLocaleString('en')} files of 1–8 KiB put by 16
clients to warm them up, then ${FILES.toLocaleString('en')} more (${median(rates).toFixed(0)} files/s, median of the quarters). CPU of the whole party per put, from the peers' own counters
around the second burst: **${cpuMsPerPut.toFixed(1)} ms** (the target is about 1 ms). Self time in the profiles (each peer's main thread
and its coding worker; startup and the stop are in them too), by where it ran. Profiles sample time on a thread, so a
synchronous call that waits (a SQLite commit's fsync) counts as well as CPU:

${table}
`
}
