import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { LocalParty } from '../src/cli/local-party.ts'
import { fileUrl } from '../test/helpers/files.ts'
import { partyHealth, waitForAgreement } from '../test/helpers/party.ts'
import { waitFor } from '../test/helpers/wait.ts'
import { glusterSmallFiles, glusterVolume } from './gluster.ts'
import { benchParty, inParallel, machine, median, today } from './lib.ts'

const PEERS = 5
const CLIENTS = 16
const IDLE_WINDOW_MS = 30_000
/** How long the party waits before rebuilding a dead peer's fragments in this bench (the default is a minute). */
const REBUILD_DELAY_MS = 10_000
/** How long no handoff may send a record before the handoffs after a restart count as over. */
const HANDOFF_QUIET_MS = 10_000
/** Files read back per size, spread evenly over all that were put (reading a million back would add half an hour and no new figure). */
const GET_SAMPLE = 100_000
/** Sizes run when `--scale-files=N,M` is not given. */
const DEFAULT_SIZES = [2_000, 10_000]

interface Figures {
  files: number
  /** Files/s of each quarter of the puts: flat when the cost per put does not grow with the files already stored. */
  putQuarters: number[]
  /** Puts answered 503 and sent again. */
  putsRetried: number
  getRate: number
  prefixPageMs: number
  listNamesPerSec: number
  healthMs: number
  idleCpuPerPeer: number
  /** Over the idle window, per peer (median): census parts compared, parts that differed, fragments listed for them. */
  idleCensus: { parts: number; differing: number; listed: number }
  peakRssMiB: number
  restartReadyS: number
  /** Tracker records the handoffs of every peer sent once the restarted peer was back (its own first pass included). */
  restartRecordsSent: number
  /** Digest comparisons (`recordDigests` requests served) over the same window: the handoffs compared rather than sent. */
  restartDigestRequests: number
  osFilesPerPeer: number
  /** Of the median peer by fragment bytes held: the disk its data dir takes (allocated blocks), and those fragment bytes. */
  disk: { used: number; held: number }
  /** Undefined when the run skipped it (`--scale-rebuild-up-to`). */
  rebuild: Rebuild | undefined
}

/** A peer SIGKILLed and left dead: when the others began rebuilding its fragments, and how fast they went. */
interface Rebuild {
  fragments: number
  bytes: number
  /** From the kill to the first fragment rebuilt: death declared, then --rebuild-delay-ms. */
  startS: number
  /** From the first fragment rebuilt to the last. */
  rebuildS: number
  /** The largest peak RSS of a survivor over its whole run, the restart's handoffs and the rebuild included. */
  peakRssMiB: number
}

/** File `i`: 1–8 KiB, its bytes derived from i (so each file differs and the reader can check it). */
export function contentOf(i: number): Buffer {
  const size = 1024 + ((i * 2654435761) % (7 * 1024))
  const out = Buffer.alloc(size)
  let x = (i + 1) * 0x9e3779b1
  for (let at = 0; at + 4 <= size; at += 4) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out.writeInt32LE(x | 0, at)
  }
  return out
}

export const nameOf = (i: number): string => `s/${i % 100}/${i}`

/** Times a put answered 503 (a party too busy: ERR_NOT_ENOUGH_PEERS) is sent again, as S3 clients do, before the run fails. */
const PUT_ATTEMPTS = 5

/** Puts the files `from..from+n-1` with CLIENTS clients; returns files/s by quarter of the puts, and how many puts were sent again after a 503. */
export async function putAll(party: LocalParty, n: number, from = 0): Promise<{ quarters: number[]; retried: number }> {
  const quarter = Math.ceil(n / 4)
  const marks: number[] = [performance.now()]
  let done = 0
  let retried = 0
  await inParallel(n, CLIENTS, async (j) => {
    const i = from + j
    for (let attempt = 1; ; attempt++) {
      const res = await fetch(fileUrl(party.peer(i % PEERS).api, nameOf(i)), { method: 'PUT', body: contentOf(i), signal: AbortSignal.timeout(120_000) })
      const text = await res.text()
      if (res.status === 201) break
      if (res.status !== 503 || attempt >= PUT_ATTEMPTS) throw new Error(`put ${nameOf(i)}: ${res.status} ${text}`)
      retried++
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt))
    }
    if (++done % quarter === 0 || done === n) marks.push(performance.now())
  })
  const quarters = marks.slice(1).map((t, q) => Math.min(quarter, n - q * quarter) / ((t - (marks[q] as number)) / 1000))
  return { quarters, retried }
}

/** Reads back up to GET_SAMPLE of the `n` files, evenly spread, each checked byte for byte; returns files/s. */
async function getAll(party: LocalParty, n: number): Promise<number> {
  const reads = Math.min(n, GET_SAMPLE)
  const started = performance.now()
  await inParallel(reads, CLIENTS, async (j) => {
    const i = Math.floor((j * n) / reads)
    const res = await fetch(fileUrl(party.peer((i + 2) % PEERS).api, nameOf(i)), { signal: AbortSignal.timeout(120_000) })
    const body = Buffer.from(await res.arrayBuffer())
    if (res.status !== 200 || !body.equals(contentOf(i))) throw new Error(`get ${nameOf(i)}: ${res.status}, ${body.length} bytes, not what was put`)
  })
  return reads / ((performance.now() - started) / 1000)
}

/** SIGKILLs peer `dead` and waits until the others have rebuilt every fragment it held. */
async function rebuildOfDead(party: LocalParty, dead: number): Promise<Rebuild> {
  const held = await sample(party.peer(dead).api, 'houseparty_fragments_held')
  const survivors = [...Array(PEERS).keys()].filter((i) => i !== dead)
  const rebuilt = async (): Promise<{ fragments: number; bytes: number }> => {
    const each = await Promise.all(
      survivors.map(async (i) => ({
        fragments: await sample(party.peer(i).api, 'houseparty_fragments_rebuilt_total'),
        bytes: await sample(party.peer(i).api, 'houseparty_rebuilt_bytes_total'),
      })),
    )
    return { fragments: each.reduce((a, b) => a + b.fragments, 0), bytes: each.reduce((a, b) => a + b.bytes, 0) }
  }
  const base = await rebuilt()
  party.signal(dead, 'SIGKILL')
  await party.exited(dead)
  const killed = performance.now()
  let started: number | undefined
  let last = base
  await waitFor(
    "the dead peer's fragments rebuilt",
    async () => {
      last = await rebuilt()
      if (started === undefined && last.fragments > base.fragments) started = performance.now()
      return last.fragments - base.fragments >= held
    },
    { timeoutMs: 3_600_000, intervalMs: 250 },
  )
  const done = performance.now()
  const peaks = await Promise.all(survivors.map((i) => peakRssMiB(party.peer(i).process?.pid)))
  return {
    peakRssMiB: Math.max(...peaks),
    fragments: last.fragments - base.fragments,
    bytes: last.bytes - base.bytes,
    startS: ((started ?? done) - killed) / 1000,
    rebuildS: (done - (started ?? done)) / 1000,
  }
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now()
  await fn()
  return performance.now() - t
}

async function json<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(300_000) })
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`)
  return (await res.json()) as T
}

/** Every name through pages of 1,000; returns names per second. */
async function listEverything(api: string, n: number): Promise<number> {
  let names = 0
  const ms = await timed(async () => {
    let token: string | undefined
    do {
      const q = new URLSearchParams({ limit: '1000', ...(token ? { token } : {}) })
      const page = await json<{ files: unknown[]; next?: string }>(`http://${api}/files?${q}`)
      names += page.files.length
      token = page.next
    } while (token)
  })
  if (names !== n) throw new Error(`the full listing gave ${names} names, not ${n}`)
  return names / (ms / 1000)
}

/** One sample of a peer's metric (`series` is the name with its labels, as exported); a missing one fails the run rather than reading as zero. */
export async function sample(api: string, series: string, missing?: number): Promise<number> {
  const text = await (await fetch(`http://${api}/metrics`, { signal: AbortSignal.timeout(10_000) })).text()
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  // A labelled counter has no line until it is first counted.
  if (!line && missing !== undefined) return missing
  if (!line) throw new Error(`${api}/metrics has no ${series}`)
  return Number(line.split(' ').at(-1))
}

/** What a peer has spent so far: CPU seconds (user + system), and census parts compared, differing and fragments listed. */
async function spent(api: string): Promise<{ cpu: number; parts: number; differing: number; listed: number }> {
  const [cpu, parts, differing, listed] = await Promise.all([
    sample(api, 'houseparty_process_process_cpu_seconds_total'),
    sample(api, 'houseparty_census_parts_total{result="compared"}', 0),
    sample(api, 'houseparty_census_parts_total{result="differing"}', 0),
    sample(api, 'houseparty_census_fragments_listed_total'),
  ])
  return { cpu, parts, differing, listed }
}

/** Peak resident set (VmHWM) of a process, from /proc. */
async function peakRssMiB(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024
}

/** The files in a data dir, and the disk they take (allocated blocks: a sparse or preallocated file counts as it sits). */
async function dirUsage(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0
  let bytes = 0
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue
    files++
    bytes += (await stat(join(entry.parentPath, entry.name))).blocks * 512
  }
  return { files, bytes }
}

async function once(n: number, withRebuild: boolean): Promise<Figures> {
  const { party, cleanup } = await benchParty(PEERS, ['--log-level', 'warn', '--rebuild-delay-ms', String(REBUILD_DELAY_MS)])
  try {
    const all = [...Array(PEERS).keys()]
    await Promise.all(all.map((i) => party.start(i, i === 0 ? [] : [0])))
    await waitForAgreement(party, all, PEERS)
    const api = party.peer(0).api
    const { quarters: putQuarters, retried: putsRetried } = await putAll(party, n)
    const getRate = await getAll(party, n)
    const pages: number[] = []
    for (let r = 0; r < 20; r++) pages.push(await timed(() => json(`http://${api}/files?prefix=s/${r}/&delimiter=/&limit=1000`)))
    const listNamesPerSec = await listEverything(api, n)
    const health: number[] = []
    for (let r = 0; r < 3; r++) health.push(await timed(() => partyHealth(api)))
    // Idle: every peer's CPU over a quiet window, after the census of the puts has settled.
    const spentByAll = () => Promise.all(all.map((i) => spent(party.peer(i).api)))
    const before = await spentByAll()
    await new Promise((r) => setTimeout(r, IDLE_WINDOW_MS))
    const after = await spentByAll()
    const idle = (what: 'cpu' | 'parts' | 'differing' | 'listed'): number => median(after.map((a, i) => a[what] - (before[i]?.[what] ?? 0)))
    const idleCpuPerPeer = idle('cpu')
    const idleCensus = { parts: idle('parts'), differing: idle('differing'), listed: idle('listed') }
    const peakRss = Math.max(...(await Promise.all(all.map((i) => peakRssMiB(party.peer(i).process?.pid)))))
    const usage = await Promise.all(all.map((i) => dirUsage(party.peer(i).dataDir)))
    const osFilesPerPeer = median(usage.map((u) => u.files))
    const held = await Promise.all(all.map((i) => sample(party.peer(i).api, 'houseparty_fragment_bytes_held', 0)))
    const middle = [...all].sort((a, b) => (held[a] as number) - (held[b] as number))[PEERS >> 1] as number
    const disk = { used: (usage[middle] as { bytes: number }).bytes, held: held[middle] as number }
    // One peer restarted on its volume: SIGKILL, start again, until it answers /readyz.
    const victim = PEERS - 1
    const others = all.filter((i) => i !== victim)
    const total = async (peers: readonly number[], metric: string): Promise<number> =>
      (await Promise.all(peers.map((i) => sample(party.peer(i).api, metric, 0)))).reduce((a, b) => a + b, 0)
    const SENT = 'houseparty_tracker_records_handed_total{way="sent"}'
    const DIGESTS = 'houseparty_tcp_requests_total{op="recordDigests"}'
    const sentBefore = await total(others, SENT)
    const digestsBefore = await total(others, DIGESTS)
    party.signal(victim, 'SIGKILL')
    await party.exited(victim)
    const restartReadyS =
      (await timed(async () => {
        await party.start(victim, [0])
        await waitFor(
          'the restarted peer to be ready',
          async () => (await fetch(`http://${party.peer(victim).api}/readyz`).catch(() => undefined))?.ok === true,
          {
            timeoutMs: 600_000,
            intervalMs: 50,
          },
        )
      })) / 1000
    // The handoffs the return set off (the restarted peer's counter starts again at zero): until none has sent anything for 10 s.
    let restartRecordsSent = -1
    let stableSince = performance.now()
    await waitFor(
      'the handoffs after the restart to settle',
      async () => {
        const now = (await total(others, SENT)) - sentBefore + (await total([victim], SENT))
        if (now !== restartRecordsSent) {
          restartRecordsSent = now
          stableSince = performance.now()
        }
        return performance.now() - stableSince >= HANDOFF_QUIET_MS
      },
      { timeoutMs: 600_000, intervalMs: 500 },
    )
    const restartDigestRequests = (await total(others, DIGESTS)) - digestsBefore + (await total([victim], DIGESTS))
    const rebuild = withRebuild ? await rebuildOfDead(party, PEERS - 2) : undefined
    return {
      files: n,
      putQuarters,
      putsRetried,
      getRate,
      prefixPageMs: median(pages),
      listNamesPerSec,
      healthMs: median(health),
      idleCpuPerPeer,
      idleCensus,
      peakRssMiB: peakRss,
      restartReadyS,
      restartRecordsSent,
      restartDigestRequests,
      osFilesPerPeer,
      disk,
      rebuild,
    }
  } finally {
    await cleanup()
  }
}

function rebuildRate(r: Rebuild): string {
  const s = Math.max(r.rebuildS, 0.001)
  return `${r.rebuildS.toFixed(1)} s: ${(r.fragments / s).toFixed(0)} files/s, ${(r.bytes / 1e6 / s).toFixed(1)} MB/s`
}

/** At most this many files go through GlusterFS: at a million, the reference alone would take most of an hour. */
const GLUSTER_MAX_FILES = 20_000

/** The same small files written and read through a GlusterFS 2+1 volume in this run, as a ratio to House Party's rates. */
async function glusterReference(ours: Figures): Promise<string> {
  const count = Math.min(ours.files, GLUSTER_MAX_FILES)
  const volume = await glusterVolume()
  if (typeof volume === 'string') return `GlusterFS reference: not measured in this run (${volume}).`
  try {
    const { putRate, getRate } = await glusterSmallFiles(volume.mount, count, CLIENTS, nameOf, contentOf)
    const put = median(ours.putQuarters)
    return `GlusterFS reference, same run: ${count.toLocaleString('en')} of the same files through a FUSE mount of a dispersed 2+1
volume of three bricks on this host (stock options), ${CLIENTS} workers, each file opened, written, fdatasynced and closed:
written at **${putRate.toFixed(0)} files/s**, read back at **${getRate.toFixed(0)} files/s**. House Party at ${ours.files.toLocaleString('en')}
files: put ${put.toFixed(0)} files/s (median of the quarters), **${(put / putRate).toFixed(2)}×** GlusterFS; get ${ours.getRate.toFixed(0)} files/s,
**${(ours.getRate / getRate).toFixed(2)}×**.`
  } finally {
    await volume.close()
  }
}

export async function scaleBench(args: readonly string[]): Promise<string> {
  const given = args.find((a) => a.startsWith('--scale-files='))
  const sizes = given ? given.slice('--scale-files='.length).split(',').map(Number) : DEFAULT_SIZES
  const upTo = args.find((a) => a.startsWith('--scale-rebuild-up-to='))
  const rebuildUpTo = upTo ? Number(upTo.slice('--scale-rebuild-up-to='.length)) : Number.POSITIVE_INFINITY
  const rows: Figures[] = []
  for (const n of sizes) {
    rows.push(await once(n, n <= rebuildUpTo))
    // Printed as each size ends, so a run stopped later (the reference, a larger size) keeps what it measured.
    console.error(`# scale: ${n} files done: ${JSON.stringify(rows.at(-1))}`)
  }
  const f = (x: number, d = 0): string => x.toFixed(d)
  const reference = await glusterReference(rows[0] as Figures)
  const column = (label: string, cell: (r: Figures) => string): string => `| ${label} | ${rows.map(cell).join(' | ')} |`
  return `## Scale: many small files

${today()}, ${machine()}. ${PEERS} local peer processes (2+1), files of 1–8 KiB named \`s/<i mod 100>/<i>\`, ${CLIENTS} concurrent
HTTP clients spread over the peers; gets read every file back (at most ${GET_SAMPLE.toLocaleString('en')}, spread evenly over all that were
put), each compared byte for byte with what was put. One run per size (a run at the
largest size takes minutes); \`npm run bench -- scale --scale-files=N,M\` picks the sizes, \`--scale-rebuild-up-to=N\` skips the
rebuild above N files.

| | ${rows.map((r) => `${r.files.toLocaleString('en')} files`).join(' | ')} |
|${'---|'.repeat(rows.length + 1)}
${column('put rate, files/s, by quarter of the puts', (r) => r.putQuarters.map((q) => f(q)).join(' → '))}
${column('puts answered 503 (party busy) and sent again', (r) => f(r.putsRetried))}
${column('get rate, files/s', (r) => f(r.getRate))}
${column('`GET /files?prefix=s/N/&delimiter=/&limit=1000`, median of 20', (r) => `${f(r.prefixPageMs, 1)} ms`)}
${column('full listing, pages of 1,000', (r) => `${f(r.listNamesPerSec)} names/s`)}
${column('`GET /health/party`, median of 3', (r) => `${f(r.healthMs)} ms`)}
${column(`CPU of an idle peer over ${IDLE_WINDOW_MS / 1000} s (median peer)`, (r) => `${f(r.idleCpuPerPeer, 2)} s`)}
${column(`census of an idle peer over ${IDLE_WINDOW_MS / 1000} s: parts compared / differing / fragments listed`, (r) => `${f(r.idleCensus.parts)} / ${f(r.idleCensus.differing)} / ${f(r.idleCensus.listed)}`)}
${column('peak RSS of a peer (largest), up to the idle window', (r) => `${f(r.peakRssMiB)} MiB`)}
${column('one peer SIGKILLed and restarted on its volume → ready', (r) => `${f(r.restartReadyS, 1)} s`)}
${column('tracker records sent by the handoffs after that restart (all peers), and digest requests', (r) => `${f(r.restartRecordsSent)} (${f(r.restartDigestRequests)} \`recordDigests\`)`)}
${column("OS files in a peer's data dir (median peer)", (r) => f(r.osFilesPerPeer))}
${column("disk a peer's data dir takes, against the fragment bytes it holds (median peer)", (r) => `${f(r.disk.used / 2 ** 20)} MiB for ${f(r.disk.held / 2 ** 20)} MiB (${f(r.disk.used / r.disk.held, 2)}×)`)}
${column('a second peer SIGKILLed and left dead: fragments it held, rebuilt by the others', (r) => (r.rebuild ? `${f(r.rebuild.fragments)} (${f(r.rebuild.bytes / 2 ** 20, 1)} MiB)` : 'not run'))}
${column(`kill → first fragment rebuilt (death declared, then \`--rebuild-delay-ms\` ${REBUILD_DELAY_MS / 1000} s)`, (r) => (r.rebuild ? `${f(r.rebuild.startS, 1)} s` : '—'))}
${column('rebuild, first fragment → last', (r) => (r.rebuild ? rebuildRate(r.rebuild) : '—'))}
${column('peak RSS of a peer (largest), through the restart and the rebuild', (r) => (r.rebuild ? `${f(r.rebuild.peakRssMiB)} MiB` : '—'))}

${reference}

A put of a file this small is coded in memory and sent whole, one \`stash\` per fragment on a connection kept open to each
holder, which keeps the bytes in its \`fragments.db\`, a blob row beside the fragment's row (no file of its own); the record goes to the
three trackers' \`index.db\`. Rows written in one turn of the event loop share a commit, synced off the event loop, and
checkpointed by a worker thread ([decision 5](docs/decisions/0005-embedded-index.md)). Neither index is held in memory per
entry: a peer keeps a digest per ring bucket and reads rows on demand. The census and \`GET /health/party\` compare what
each guest holds by digest, one short string per part of an arc, and list fragments only where digests differ; between
view changes a census reads only the records written since the last one and those where a guest differs, so neither an
idle party nor a stream of puts makes it read every record. A listing page carries each record once (whole from the
name's primary tracker, as a version from the others). A pass after a view change still reads every record of its arc,
ten thousand at a time (read, census, plan and carry out a chunk, then the next), so its memory stays that of a chunk
while its time grows with the files.
`
}
