import { randomBytes } from 'node:crypto'
import { startParty } from '../test/helpers/party.ts'
import { expectedHash, getHash, peersCpuSeconds, put } from './files.ts'
import { benchParty, machine, median, today } from './lib.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB
const RUNS = 5
const PEERS = 5

interface Figures {
  put: number[]
  get: number[]
  putCpu: number[]
  getCpu: number[]
}

/**
 * What encrypting peer traffic costs: two local parties of 5 peers in one
 * run, one with the default `--peer-encryption on` (TLS 1.3 between peers,
 * sealed datagrams) and one with `clear` (authenticated, unencrypted, as
 * earlier releases), a 1 GiB put and get on each in turn, run after run, so
 * that both see the same machine.
 */
export async function peerTlsBench(): Promise<string> {
  const encrypted = await benchParty(PEERS, ['--log-level', 'warn', '--peer-encryption', 'on'])
  const clear = await benchParty(PEERS, ['--log-level', 'warn', '--peer-encryption', 'clear'])
  const blocks = Array.from({ length: 16 }, () => randomBytes(MiB))
  const want = expectedHash(GiB, blocks)
  const figures = { on: fresh(), clear: fresh() }
  try {
    await startParty(encrypted.party, PEERS)
    await startParty(clear.party, PEERS)
    for (let r = 0; r < RUNS; r++) {
      for (const [mode, { party }] of [
        ['on', encrypted],
        ['clear', clear],
      ] as const) {
        const f = figures[mode]
        let cpu0 = await peersCpuSeconds(party, PEERS)
        let t0 = performance.now()
        await put(party.peer(r % PEERS).api, 'bench/1GiB', GiB, blocks)
        f.put.push(GiB / ((performance.now() - t0) / 1000) / 1e9)
        f.putCpu.push((await peersCpuSeconds(party, PEERS)) - cpu0)
        cpu0 = await peersCpuSeconds(party, PEERS)
        t0 = performance.now()
        const got = await getHash(party.peer((r + 1) % PEERS).api, 'bench/1GiB')
        f.get.push(GiB / ((performance.now() - t0) / 1000) / 1e9)
        f.getCpu.push((await peersCpuSeconds(party, PEERS)) - cpu0)
        if (got !== want) throw new Error(`get returned sha256 ${got}, expected ${want}`)
      }
    }
  } finally {
    await encrypted.cleanup()
    await clear.cleanup()
  }
  const row = (label: string, f: Figures): string =>
    `| ${label} | ${median(f.put).toFixed(2)} | ${median(f.putCpu).toFixed(1)} | ${median(f.get).toFixed(2)} | ${median(f.getCpu).toFixed(1)} |`
  const cost = (a: number[], b: number[]): string => `${Math.round((1 - median(a) / median(b)) * 100)}%`
  return `## Encrypted peer traffic

${today()}, ${machine()}. Two local parties of ${PEERS} peers (2+1) in one run: one with \`--peer-encryption on\` (the default: fragments
and tracker calls over TLS 1.3 with a pre-shared key derived from the party key, AES-128-GCM; membership datagrams sealed with
ChaCha20-Poly1305), one with \`clear\` (authenticated, unencrypted, as releases before 0.2). A 1 GiB put and get on each in turn,
${RUNS} times; medians. CPU is all peers' user + system seconds for one 1 GiB put (or get).

| peer traffic | put GB/s | put CPU-s/GiB | get GB/s | get CPU-s/GiB |
|---|---|---|---|---|
${row('on (TLS 1.3)', figures.on)}
${row('clear (reference)', figures.clear)}

Throughput cost of encryption: put ${cost(figures.on.put, figures.clear.put)}, get ${cost(figures.on.get, figures.clear.get)} (goal: under 15%).
Runs, put GB/s: on ${figures.on.put.map((x) => x.toFixed(2)).join(', ')}; clear ${figures.clear.put.map((x) => x.toFixed(2)).join(', ')}.
Get GB/s: on ${figures.on.get.map((x) => x.toFixed(2)).join(', ')}; clear ${figures.clear.get.map((x) => x.toFixed(2)).join(', ')}.
`
}

const fresh = (): Figures => ({ put: [], get: [], putCpu: [], getCpu: [] })
