import { randomBytes } from 'node:crypto'
import { guestsOf, metric, partyHealth, sumMetric, waitForAgreement } from '../test/helpers/party.ts'
import { waitFor } from '../test/helpers/wait.ts'
import { loopbackGBps, put } from './files.ts'
import { benchParty, machine, median, today } from './lib.ts'

const MiB = 1024 * 1024
const RUNS = 3
const PEERS = 6
const FILES = 32
/** The default, given explicitly: the rebuild proper is timed from the end of this wait. */
const REBUILD_DELAY_MS = 60_000
const FILE_BYTES = 64 * MiB

interface Run {
  declaredS: number
  /** Kill → the first rebuilt fragment: the death vote, then --rebuild-delay-ms (a restarted peer would come back within it). */
  startedS: number
  /** Bytes that first fragment (or those finished with it) counted. */
  firstBytes: number
  /** Kill → as many bytes rebuilt as the peer held: every lost fragment made again. */
  rebuiltS: number
  redundantS: number
  rebuiltBytes: number
  lostBytes: number
}

/** True once every one of the bench's files is at full redundancy, party-wide. */
async function fullyRedundant(api: string): Promise<boolean> {
  const h = await partyHealth(api)
  return h.files === FILES && h.degraded === 0 && h.lost === 0
}

/** One run: FILES files of FILE_BYTES on 6 peers, SIGKILL one, time the death and the rebuild. */
async function once(blocks: Buffer[]): Promise<Run> {
  const { party, cleanup } = await benchParty(PEERS, [
    '--log-level',
    'warn',
    '--recovery-bytes-per-sec',
    '0',
    '--census-interval-ms',
    '5000',
    '--rebuild-delay-ms',
    String(REBUILD_DELAY_MS),
  ])
  try {
    const all = [...Array(PEERS).keys()]
    await Promise.all(all.map((i) => party.start(i, i === 0 ? [] : [0])))
    await waitForAgreement(party, all, PEERS)
    for (let f = 0; f < FILES; f++) await put(party.peer(f % PEERS).api, `bench/recovery/${f}`, FILE_BYTES, blocks)
    await waitFor('full redundancy after the puts', () => fullyRedundant(party.peer(0).api), { timeoutMs: 60_000 })
    const victim = PEERS - 1
    const survivors = all.filter((i) => i !== victim)
    const lostBytes = await metric(party.peer(victim).api, 'houseparty_fragment_bytes_held')
    const rebuiltBefore = await sumMetric(party, survivors, 'houseparty_rebuilt_bytes_total')
    const victimId = (await guestsOf(party.peer(victim).api)).self
    const t0 = performance.now()
    party.signal(victim, 'SIGKILL')
    await waitFor(
      'death declared',
      async () => {
        const views = await Promise.all(survivors.map((i) => guestsOf(party.peer(i).api)))
        return views.every((v) => !v.guests.some((g) => g.id === victimId))
      },
      { timeoutMs: 30_000, intervalMs: 20 },
    )
    const declaredS = (performance.now() - t0) / 1000
    // A fragment is counted when it is complete: the rate is taken between the first completion and the last, over the
    // bytes completed after the first (what was in flight before the first completion is not timed, so not counted).
    let firstBytes = 0
    await waitFor(
      'the first rebuilt fragment',
      async () => {
        firstBytes = (await sumMetric(party, survivors, 'houseparty_rebuilt_bytes_total')) - rebuiltBefore
        return firstBytes > 0
      },
      { timeoutMs: 300_000, intervalMs: 20 },
    )
    const startedS = (performance.now() - t0) / 1000
    await waitFor('every lost byte rebuilt', async () => (await sumMetric(party, survivors, 'houseparty_rebuilt_bytes_total')) >= rebuiltBefore + lostBytes, {
      timeoutMs: 300_000,
      intervalMs: 50,
    })
    const rebuiltS = (performance.now() - t0) / 1000
    await waitFor('full redundancy', () => fullyRedundant(party.peer(0).api), { timeoutMs: 300_000, intervalMs: 100 })
    const redundantS = (performance.now() - t0) / 1000
    const rebuiltAfter = await sumMetric(party, survivors, 'houseparty_rebuilt_bytes_total')
    return { declaredS, startedS, firstBytes, rebuiltS, redundantS, rebuiltBytes: rebuiltAfter - rebuiltBefore, lostBytes }
  } finally {
    await cleanup()
  }
}

export async function recoveryBench(): Promise<string> {
  const tcp = await loopbackGBps()
  const blocks = Array.from({ length: 16 }, () => randomBytes(MiB))
  const runs: Run[] = []
  for (let r = 0; r < RUNS; r++) runs.push(await once(blocks))
  // The rebuild proper, apart from the wait before it (--rebuild-delay-ms, on purpose) and from the census after it
  // (when health reports full redundancy).
  const rate = runs.map((r) => (r.lostBytes - r.firstBytes) / (r.rebuiltS - r.startedS) / 1e9)
  const started = median(runs.map((r) => r.startedS))
  const rebuilding = median(runs.map((r) => r.rebuiltS - r.startedS))
  const declared = median(runs.map((r) => r.declaredS))
  const redundant = median(runs.map((r) => r.redundantS))
  const rebuildGBps = median(rate)
  // Counted from the moment the wait ends (death declared + the delay): the first fragment's own time and any lag
  // in starting are in it.
  const fromEligible = runs.map((r) => r.lostBytes / (r.rebuiltS - r.declaredS - REBUILD_DELAY_MS / 1000) / 1e9)
  return `## Recovery: one guest killed

${today()}, ${machine()}. ${PEERS} local peer processes (2+1, 1 MiB stripes), ${(FILES * FILE_BYTES) / 1024 / MiB} GiB stored as ${FILES} files of ${FILE_BYTES / MiB} MiB,
then one peer SIGKILLed. "Death declared" is when no survivor lists it any more; "full redundancy" is when \`GET /health/party\`
(every guest's records and inventory) shows no degraded file. Recovery is unthrottled here (\`--recovery-bytes-per-sec 0\`);
each file is rebuilt by its primary tracker, two files at a time per peer. Median of ${RUNS} runs; loopback TCP measured in the same run.

| | median | runs |
|---|---|---|
| kill → death declared | ${declared.toFixed(2)} s | ${runs.map((r) => r.declaredS.toFixed(2)).join(', ')} |
| kill → the first rebuilt fragment (death vote + \`--rebuild-delay-ms\`, + one fragment's rebuild; the delay set to its default, 60 s) | ${started.toFixed(2)} s | ${runs.map((r) => r.startedS.toFixed(2)).join(', ')} |
| first rebuilt fragment → every lost byte rebuilt | ${rebuilding.toFixed(2)} s | ${runs.map((r) => (r.rebuiltS - r.startedS).toFixed(2)).join(', ')} |
| kill → full redundancy in \`GET /health/party\` (at the census after, every 5 s here) | ${redundant.toFixed(2)} s | ${runs.map((r) => r.redundantS.toFixed(2)).join(', ')} |
| fragment bytes lost with the peer | ${(median(runs.map((r) => r.lostBytes)) / MiB).toFixed(0)} MiB | ${runs.map((r) => (r.lostBytes / MiB).toFixed(0)).join(', ')} |
| bytes rebuilt | ${(median(runs.map((r) => r.rebuiltBytes)) / MiB).toFixed(0)} MiB | ${runs.map((r) => (r.rebuiltBytes / MiB).toFixed(0)).join(', ')} |
| rebuild throughput (bytes rebuilt after the first fragment / the time from it to the last; goal ≥ 300 MB/s) | ${(rebuildGBps * 1000).toFixed(0)} MB/s | ${rate.map((x) => (x * 1000).toFixed(0)).join(', ')} |
| rebuild throughput from the end of the wait (every lost byte / the time from death declared + \`--rebuild-delay-ms\` to the last) | ${(median(fromEligible) * 1000).toFixed(0)} MB/s | ${fromEligible.map((x) => (x * 1000).toFixed(0)).join(', ')} |
| loopback TCP (reference) | ${(tcp * 1000).toFixed(0)} MB/s | |
| rebuild / loopback TCP | ${(rebuildGBps / tcp).toFixed(3)} | |

Rebuilding one fragment reads k = 2 fragments (twice its size) from two peers, decodes, checksums and writes it with fsync on a third,
so every rebuilt byte costs three bytes of transfer; all peers and the test share the machine's two cores.
`
}
