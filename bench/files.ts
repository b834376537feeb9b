import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdir, open, readFile, rm } from 'node:fs/promises'
import { type IncomingMessage, request } from 'node:http'
import { connect } from 'node:net'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { LocalParty } from '../src/cli/local-party.ts'
import { PEER_V8_FLAGS } from '../src/shared/runtime.ts'
import { fileUrl } from '../test/helpers/files.ts'
import { guestsOf, metric, startParty } from '../test/helpers/party.ts'
import { dropCaches, glusterReference, machineCpuSeconds, sideBySide } from './gluster.ts'
import { benchParty, machine, median, today } from './lib.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB
const RUNS = 3

/** Loopback TCP between two processes: 1 GiB in 1 MiB writes, honouring backpressure. */
export async function loopbackGBps(): Promise<number> {
  const sink = spawn(process.execPath, [new URL('./tcp-sink.ts', import.meta.url).pathname], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const [line] = (await once(sink.stdout, 'data')) as [Buffer]
    const port = Number(line.toString().trim())
    const block = randomBytes(MiB)
    const runs: number[] = []
    for (let r = 0; r < RUNS; r++) {
      const socket = connect({ host: '127.0.0.1', port })
      await once(socket, 'connect')
      const t0 = performance.now()
      for (let i = 0; i < 1024; i++) if (!socket.write(block)) await once(socket, 'drain')
      socket.end()
      await once(socket, 'close')
      runs.push(GiB / ((performance.now() - t0) / 1000) / 1e9)
    }
    return median(runs)
  } finally {
    sink.kill()
  }
}

/**
 * Raw disk, as a put leaves it: 1.5 GiB (a 1 GiB file's 2+1 fragments) in
 * 1 MiB writes with fdatasync, into the directory the party will use. Twice,
 * the first copy kept while the second is written (as a put keeps the
 * replaced version until it is recorded), so the second pays for page cache
 * the machine has not used before. Median seconds for each over RUNS runs.
 */
export async function rawDiskSeconds(dir: string): Promise<[number, number]> {
  const block = randomBytes(MiB)
  const write = async (path: string): Promise<number> => {
    const t0 = performance.now()
    const fh = await open(path, 'w')
    try {
      for (let i = 0; i < 1536; i++) await fh.write(block)
      await fh.datasync()
    } finally {
      await fh.close()
    }
    return (performance.now() - t0) / 1000
  }
  const first: number[] = []
  const second: number[] = []
  for (let r = 0; r < RUNS; r++) {
    await mkdir(dir, { recursive: true })
    try {
      first.push(await write(join(dir, 'first')))
      second.push(await write(join(dir, 'second')))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }
  return [median(first), median(second)]
}

/** `size` bytes from 16 random MiB blocks, cycled (cheap to generate, not compressible). */
export function source(size: number, blocks: Buffer[]): Readable {
  let sent = 0
  return new Readable({
    read() {
      if (sent >= size) return void this.push(null)
      const block = blocks[(sent / MiB) % blocks.length] as Buffer
      const n = Math.min(MiB, size - sent)
      sent += n
      this.push(n === MiB ? block : block.subarray(0, n))
    },
  })
}

export function expectedHash(size: number, blocks: Buffer[]): string {
  const h = createHash('sha256')
  for (let at = 0; at < size; at += MiB) h.update((blocks[(at / MiB) % blocks.length] as Buffer).subarray(0, Math.min(MiB, size - at)))
  return h.digest('hex')
}

/** A plain node:http upload (as curl would send it): the client should cost the shared CPU as little as possible. */
export async function put(api: string, name: string, size: number, blocks: Buffer[]): Promise<void> {
  const req = request(fileUrl(api, name), { method: 'PUT', headers: { 'content-length': String(size) } })
  const answered = once(req, 'response') as Promise<[IncomingMessage]>
  await pipeline(source(size, blocks), req)
  const [res] = await answered
  let text = ''
  for await (const chunk of res) text += chunk
  if (res.statusCode !== 201) throw new Error(`put ${name}: ${res.statusCode} ${text}`)
}

export async function getHash(api: string, name: string): Promise<string> {
  const [res] = (await once(request(fileUrl(api, name)).end(), 'response')) as [IncomingMessage]
  if (res.statusCode !== 200) throw new Error(`get ${name}: ${res.statusCode}`)
  const h = createHash('sha256')
  for await (const chunk of res) h.update(chunk)
  return h.digest('hex')
}

/** The one buffer every lean read lands in (reads are hashed before the next one runs). */
const READ_BUFFER = Buffer.allocUnsafe(MiB)

/**
 * A GET read as the GlusterFS reference reads its mount: into one reused
 * buffer, hashed (HTTP/1.1 over a plain socket, the body sized by
 * Content-Length). node:http allocates a buffer per 64 KiB read, whose
 * garbage collection cost this client more CPU than its sha256 did, on the
 * cores the peers share.
 */
export function leanGetHash(api: string, name: string): Promise<string> {
  const url = new URL(fileUrl(api, name))
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    let head = Buffer.alloc(0)
    let left = -1
    let status = 0
    const take = (data: Buffer): void => {
      if (left < 0) {
        head = Buffer.concat([head, data])
        const end = head.indexOf('\r\n\r\n')
        if (end < 0) return
        const text = head.subarray(0, end).toString('latin1')
        status = Number(text.split(' ')[1])
        left = Number(/\r\ncontent-length:\s*(\d+)/i.exec(text)?.[1] ?? 0)
        data = head.subarray(end + 4)
      }
      if (status !== 200) return reject(new Error(`get ${name}: ${status}`))
      const n = Math.min(left, data.length)
      hash.update(data.subarray(0, n))
      left -= n
      if (left === 0) {
        socket.destroy()
        resolve(hash.digest('hex'))
      }
    }
    const socket = connect({
      host: url.hostname,
      port: Number(url.port),
      onread: {
        buffer: READ_BUFFER,
        callback: (n, buf) => {
          take(Buffer.from(buf.buffer, buf.byteOffset, n))
          return true
        },
      },
    })
    socket.once('connect', () => socket.write(`GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`))
    socket.once('error', reject)
    socket.once('end', () => left !== 0 && reject(new Error(`get ${name}: the answer ended ${left} bytes short`)))
  })
}

/** Whether the guest behind `api` holds a fragment of the current version of `name`. */
async function holdsFragmentOf(api: string, name: string): Promise<boolean> {
  const self = (await guestsOf(api)).self
  const res = await fetch(`http://${api}/files`, { signal: AbortSignal.timeout(10_000) })
  const { files } = (await res.json()) as { files: { name: string; holders: { guest: string }[] }[] }
  return files.find((f) => f.name === name)?.holders.some((h) => h.guest === self) ?? false
}

/** CPU seconds (user + system) the peers have used so far, from /proc. */
export async function peersCpuSeconds(party: LocalParty, n: number): Promise<number> {
  let total = 0
  for (let i = 0; i < n; i++) {
    const stat = await readFile(`/proc/${party.peer(i).process?.pid}/stat`, 'utf8').catch(() => '')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    total += (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100
  }
  return total
}

/** Each peer's peak RSS (VmHWM) in MiB, from /proc. */
async function peakRssEach(party: LocalParty, n: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const pid = party.peer(i).process?.pid
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
    out.push(Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024)
  }
  return out
}

async function peakRssMiB(party: LocalParty, n: number): Promise<number> {
  return Math.max(...(await peakRssEach(party, n)))
}

/** 1,000 files of mixed sizes: how evenly bytes and fragments land on the peers. */
async function spread(peers: number): Promise<string> {
  const { party, cleanup } = await benchParty(peers)
  try {
    await startParty(party, peers)
    const blocks = [randomBytes(MiB)]
    let seed = 7
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    const sizes = Array.from({ length: 1000 }, () => Math.round(1024 * 2 ** (random() * 12))) // 1 KiB .. 4 MiB, log-uniform
    const queue = sizes.map((s, i) => ({ s, i }))
    const t0 = performance.now()
    await Promise.all(
      [0, 1, 2, 3].map(async (w) => {
        for (let job = queue.shift(); job; job = queue.shift()) await put(party.peer((job.i + w) % peers).api, `spread/${job.i}`, job.s, blocks)
      }),
    )
    const seconds = (performance.now() - t0) / 1000
    await new Promise((r) => setTimeout(r, 500))
    const bytes: number[] = []
    const frags: number[] = []
    for (let i = 0; i < peers; i++) {
      bytes.push(await metric(party.peer(i).api, 'houseparty_fragment_bytes_held'))
      frags.push(await metric(party.peer(i).api, 'houseparty_fragments_held'))
    }
    const dev = (xs: number[]): string => {
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length
      return `${((Math.min(...xs) / mean - 1) * 100).toFixed(1)}% / +${((Math.max(...xs) / mean - 1) * 100).toFixed(1)}%`
    }
    const total = sizes.reduce((a, b) => a + b, 0)
    return `1,000 files (1 KiB–4 MiB, log-uniform, ${(total / MiB).toFixed(0)} MiB in all) put 4 at a time through all ${peers} peers in ${seconds.toFixed(1)} s. Per peer, min / max against the mean: bytes held ${dev(bytes)}, fragments held ${dev(frags)}.`
  } finally {
    await cleanup()
  }
}

export async function filesBench(): Promise<string> {
  const peers = 5
  const tcp = await loopbackGBps()
  const { party, cleanup } = await benchParty(peers, ['--log-level', 'warn'])
  const blocks = Array.from({ length: 16 }, () => randomBytes(MiB))
  const want = expectedHash(GiB, blocks)
  const puts: number[] = []
  const gets: number[] = []
  const putCpu: number[] = []
  const putWall: number[] = []
  const putLocal: boolean[] = []
  /** Every process's CPU-seconds (peers, client, kernel), for the side-by-side with GlusterFS. */
  const putAllCpu: number[] = []
  const getAllCpu: number[] = []
  let cold = false
  try {
    const [diskFirst, diskSecond] = await rawDiskSeconds(join(dirname(party.peer(0).dataDir), 'raw-disk'))
    await startParty(party, peers)
    for (let r = 0; r < RUNS; r++) {
      const cpu0 = await peersCpuSeconds(party, peers)
      let all0 = await machineCpuSeconds()
      let t0 = performance.now()
      await put(party.peer(r % peers).api, 'bench/1GiB', GiB, blocks)
      const wall = (performance.now() - t0) / 1000
      puts.push(GiB / wall / 1e9)
      putLocal.push(await holdsFragmentOf(party.peer(r % peers).api, 'bench/1GiB'))
      putWall.push(wall)
      putCpu.push((await peersCpuSeconds(party, peers)) - cpu0)
      putAllCpu.push((await machineCpuSeconds()) - all0)
      // Cold, as GlusterFS's read below: the fragments come from disk, not the page cache the put filled.
      cold = await dropCaches()
      all0 = await machineCpuSeconds()
      t0 = performance.now()
      const got = await leanGetHash(party.peer((r + 1) % peers).api, 'bench/1GiB')
      gets.push(GiB / ((performance.now() - t0) / 1000) / 1e9)
      getAllCpu.push((await machineCpuSeconds()) - all0)
      if (got !== want) throw new Error(`get returned sha256 ${got}, expected ${want}`)
    }
    const rss = await peakRssMiB(party, peers)
    await cleanup()
    const gluster = await glusterReference(blocks, want)
    const put1 = median(puts)
    const diskRate = GiB / diskFirst / 1e9
    const get1 = median(gets)
    const balance = await spread(peers)
    return `## Files: put and get

${today()}, ${machine()}. A local party of ${peers} peer processes on 127.0.0.1 (2+1, 1 MiB stripes, fsync on every fragment), all on this machine's cores.
A 1 GiB file streamed from memory into \`PUT /files/…\` on one peer and read back with \`GET\` from another, the client hashing what it got
(read over a plain socket into one reused buffer, as the GlusterFS reference reads its mount)
(each get verified against the put's sha256). Median of ${RUNS} runs. Loopback TCP is measured in the same run: two processes, 1 GiB in 1 MiB writes.

| | GB/s | vs loopback TCP | vs raw disk |
|---|---|---|---|
| loopback TCP (reference) | ${tcp.toFixed(2)} | 1.00 | |
| raw disk, a 1 GiB file's 1.5 GiB of fragments (reference) | ${diskRate.toFixed(2)} | | 1.00 |
| put 1 GiB | ${put1.toFixed(2)} | ${(put1 / tcp).toFixed(2)} | ${(put1 / diskRate).toFixed(2)} |
| get 1 GiB${cold ? ', cold' : ''} | ${get1.toFixed(2)} | ${(get1 / tcp).toFixed(2)} | |

${sideBySide(put1, get1, median(putAllCpu), median(getAllCpu), gluster)}

Raw disk is measured in the same run: 1.5 GiB (what a 1 GiB put writes) in 1 MiB writes with fdatasync took ${diskFirst.toFixed(2)} s (median), quoted above
as GB/s of file; a second 1.5 GiB written while the first was kept took ${diskSecond.toFixed(2)} s (${(GiB / diskSecond / 1e9).toFixed(2)} GB/s of file). The difference is page
cache this machine had not backed before, which a put that replaces a version (kept until the new one is recorded) pays too.

A put takes 1 GiB over HTTP, hashes it (sha256) and codes it on the coordinator's worker thread, sends 1 GiB of fragments over loopback
(1.5 GiB when the coordinator holds none of them itself), checks every chunk's CRC-32 on arrival, writes 1.5 GiB with fsync, and replaces the
previous run's version (whose 1.5 GiB of fragments are deleted); a get reads 1 GiB of data fragments (its own from disk), checks every chunk,
hashes the file, and the client hashes it again. All ${peers} peers and the client share the two cores.
CPU: a 1 GiB put costs the peers ${median(putCpu).toFixed(1)} CPU-seconds (user + system, median), so the two cores are ${((median(putCpu) / median(putWall) / cpus().length) * 100).toFixed(0)}% busy
with peers alone during a put. The rest of the gap to loopback TCP is spent inside Node: its HTTP parser copies every 64 KiB body read into a
fresh buffer, and every byte crosses the kernel twice more (HTTP in, fragments out). Peers run the compiled CLI with \`${PEER_V8_FLAGS.join(' ')}\`
(src/shared/runtime.ts): the first keeps those buffers from counting against a small heap limit, the second makes scavenges
frequent enough to free them before V8's count of memory outside its heap starts a full garbage collection (every 70 MB of a put without it).
Runs: put ${puts.map((x, i) => `${x.toFixed(2)} (coordinator ${putLocal[i] ? 'holds a fragment' : 'holds none'})`).join(', ')}; get ${gets.map((x) => x.toFixed(2)).join(', ')} GB/s.
Placement weighs what each peer holds, so the holders of a re-put file change from run to run; a coordinator holding none sends all 1.5 GiB over loopback.

Peak RSS (VmHWM) of the busiest peer over all runs: **${rss.toFixed(0)} MiB** (target: under 300 MiB whatever the file size; memory holds a stripe or two per transfer).

Placement: ${balance}
`
  } finally {
    await cleanup()
  }
}

/**
 * One large file (10 GiB unless HOUSEPARTY_BENCH_LARGE_GIB says otherwise)
 * put and read back through a 5-peer party: memory must stay bounded
 * whatever the size, so this reports every peer's peak RSS.
 */
export async function largeFileBench(): Promise<string> {
  const peers = 5
  const gib = Number(process.env.HOUSEPARTY_BENCH_LARGE_GIB ?? 10)
  const size = gib * GiB
  const { party, cleanup } = await benchParty(peers, ['--log-level', 'warn'])
  const blocks = Array.from({ length: 16 }, () => randomBytes(MiB))
  try {
    await startParty(party, peers)
    const idle = await peakRssEach(party, peers)
    let t0 = performance.now()
    await put(party.peer(0).api, 'bench/large', size, blocks)
    const putSeconds = (performance.now() - t0) / 1000
    const local = await holdsFragmentOf(party.peer(0).api, 'bench/large')
    t0 = performance.now()
    const got = await getHash(party.peer(1).api, 'bench/large')
    const getSeconds = (performance.now() - t0) / 1000
    if (got !== expectedHash(size, blocks)) throw new Error(`get returned sha256 ${got}, not the put's`)
    const rss = await peakRssEach(party, peers)
    const row = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(' | ')
    return `## Large file: bounded memory

${today()}, ${machine()}. One ${gib} GiB file put into peer 0 (which ${local ? 'holds one of its fragments' : 'holds none of its fragments, so all three go over loopback'}) and read back
from peer 1 of a local party of ${peers} (2+1, 1 MiB stripes), the client checking the sha256 of what it got (it matched). Peers run the compiled CLI.

| | seconds | GB/s |
|---|---|---|
| put ${gib} GiB | ${putSeconds.toFixed(1)} | ${(size / putSeconds / 1e9).toFixed(2)} |
| get ${gib} GiB | ${getSeconds.toFixed(1)} | ${(size / getSeconds / 1e9).toFixed(2)} |

Peak RSS (VmHWM, MiB) of each peer process; target under 300 MiB whatever the file size:

| | ${Array.from({ length: peers }, (_, i) => `peer ${i}`).join(' | ')} |
|---|${'---|'.repeat(peers)}
| after start | ${row(idle)} |
| after put and get | ${row(rss)} |
`
  } finally {
    await cleanup()
  }
}
