import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { LocalParty } from '../src/cli/local-party.ts'
import { startParty } from '../test/helpers/party.ts'
import { expectedHash, leanGetHash, put } from './files.ts'
import { machineCpuSeconds } from './gluster.ts'
import { benchParty, machine, median, today } from './lib.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB
const PEERS = 5
const RUNS = 3
const STRIPES = [1, 4, 8]

interface Figures {
  put: number[]
  get: number[]
  putCpu: number[]
  getCpu: number[]
}

async function peakRssMiB(party: LocalParty): Promise<number> {
  let peak = 0
  for (let i = 0; i < PEERS; i++) {
    const status = await readFile(`/proc/${party.peer(i).process?.pid}/status`, 'utf8').catch(() => '')
    peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024)
  }
  return peak
}

/**
 * Stripe size against large-file speed: one party per `--stripe-bytes`
 * (1, 4 and 8 MiB), all running at once, a 1 GiB put and get on each in
 * turn, RUNS rounds, so every size sees the same machine.
 */
export async function stripesBench(): Promise<string> {
  const parties = await Promise.all(STRIPES.map((mib) => benchParty(PEERS, ['--log-level', 'warn', '--stripe-bytes', String(mib * MiB)])))
  const blocks = Array.from({ length: 16 }, () => randomBytes(MiB))
  const want = expectedHash(GiB, blocks)
  const figures: Figures[] = STRIPES.map(() => ({ put: [], get: [], putCpu: [], getCpu: [] }))
  const rss: number[] = []
  try {
    for (const { party } of parties) await startParty(party, PEERS)
    for (let r = 0; r < RUNS; r++) {
      for (const [i, { party }] of parties.entries()) {
        const f = figures[i] as Figures
        let cpu0 = await machineCpuSeconds()
        let t0 = performance.now()
        await put(party.peer(r % PEERS).api, 'bench/1GiB', GiB, blocks)
        f.put.push(GiB / ((performance.now() - t0) / 1000) / 1e9)
        f.putCpu.push((await machineCpuSeconds()) - cpu0)
        cpu0 = await machineCpuSeconds()
        t0 = performance.now()
        const got = await leanGetHash(party.peer((r + 1) % PEERS).api, 'bench/1GiB')
        f.get.push(GiB / ((performance.now() - t0) / 1000) / 1e9)
        f.getCpu.push((await machineCpuSeconds()) - cpu0)
        if (got !== want) throw new Error(`get returned sha256 ${got}, expected ${want}`)
      }
    }
    for (const { party } of parties) rss.push(await peakRssMiB(party))
  } finally {
    for (const { cleanup } of parties) await cleanup()
  }
  const rows = STRIPES.map((mib, i) => {
    const f = figures[i] as Figures
    const runs = `${f.put.map((x) => x.toFixed(2)).join(', ')} / ${f.get.map((x) => x.toFixed(2)).join(', ')}`
    return `| ${mib} MiB | ${median(f.put).toFixed(2)} | ${median(f.putCpu).toFixed(1)} | ${median(f.get).toFixed(2)} | ${median(f.getCpu).toFixed(1)} | ${rss[i]?.toFixed(0)} MiB | ${runs} |`
  })
  return `## Stripe size and large files

${today()}, ${machine()}. \`npm run bench -- stripes\`: three local parties of ${PEERS} peers (2+1) at once, one per \`--stripe-bytes\`,
a 1 GiB put and a get (read as in the files bench) on each in turn, ${RUNS} rounds; medians. CPU is every process on the machine (/proc/stat), per GiB.

| stripe | put GB/s | CPU-s per GiB put | get GB/s | CPU-s per GiB got | peak RSS, busiest peer | runs (put / get) |
|---|---|---|---|---|---|---|
${rows.join('\n')}

A larger stripe means fewer chunks (each a frame, a CRC call, a worker message and a write) and larger reads and writes; it also
means larger buffers in flight on every transfer, hence the memory. The default stays 1 MiB: the peak-memory bound holds with
room to spare, and a small file (up to one stripe) is coded whole in memory.
`
}
