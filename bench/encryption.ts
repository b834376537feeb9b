import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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

/** Two local parties in one run, told apart by their peer flags: a 1 GiB put and get on each in turn, RUNS times. */
async function compareParties(a: string[], b: string[]): Promise<{ a: Figures; b: Figures }> {
  const first = await benchParty(PEERS, ['--log-level', 'warn', ...a])
  const second = await benchParty(PEERS, ['--log-level', 'warn', ...b])
  const blocks = Array.from({ length: 16 }, () => randomBytes(MiB))
  const want = expectedHash(GiB, blocks)
  const figures = { a: fresh(), b: fresh() }
  try {
    await startParty(first.party, PEERS)
    await startParty(second.party, PEERS)
    for (let r = 0; r < RUNS; r++) {
      for (const [which, { party }] of [
        ['a', first],
        ['b', second],
      ] as const) {
        const f = figures[which]
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
    await first.cleanup()
    await second.cleanup()
  }
  return figures
}

const row = (label: string, f: Figures): string =>
  `| ${label} | ${median(f.put).toFixed(2)} | ${median(f.putCpu).toFixed(1)} | ${median(f.get).toFixed(2)} | ${median(f.getCpu).toFixed(1)} |`
const cost = (a: number[], b: number[]): string => `${Math.round((1 - median(a) / median(b)) * 100)}%`
const runs = (label: string, f: Figures, reference: Figures): string =>
  `Runs, put GB/s: ${label} ${f.put.map((x) => x.toFixed(2)).join(', ')}; reference ${reference.put.map((x) => x.toFixed(2)).join(', ')}.
Get GB/s: ${label} ${f.get.map((x) => x.toFixed(2)).join(', ')}; reference ${reference.get.map((x) => x.toFixed(2)).join(', ')}.`

/**
 * What encrypting peer traffic costs: one party with the default
 * `--peer-encryption on` (TLS 1.3 between peers, sealed datagrams), one
 * with `clear` (authenticated, unencrypted, as earlier releases).
 */
export async function peerTlsBench(): Promise<string> {
  const { a: on, b: clear } = await compareParties(['--peer-encryption', 'on'], ['--peer-encryption', 'clear'])
  return `## Encrypted peer traffic

${today()}, ${machine()}. Two local parties of ${PEERS} peers (2+1) in one run: one with \`--peer-encryption on\` (the default: fragments
and tracker calls over TLS 1.3 with a pre-shared key derived from the party key, AES-128-GCM; membership datagrams sealed with
ChaCha20-Poly1305), one with \`clear\` (authenticated, unencrypted, as releases before 0.2). A 1 GiB put and get on each in turn,
${RUNS} times; medians. CPU is all peers' user + system seconds for one 1 GiB put (or get).

| peer traffic | put GB/s | put CPU-s/GiB | get GB/s | get CPU-s/GiB |
|---|---|---|---|---|
${row('on (TLS 1.3)', on)}
${row('clear (reference)', clear)}

Throughput cost of encryption: put ${cost(on.put, clear.put)}, get ${cost(on.get, clear.get)} (goal: under 15%).
${runs('on', on, clear)}
`
}

/** What encryption at rest costs: one party with --at-rest-key-file, one without; both encrypt peer traffic. */
export async function atRestBench(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'houseparty-bench-at-rest-'))
  try {
    const keyFile = join(dir, 'at-rest-key')
    await writeFile(keyFile, randomBytes(36).toString('base64'))
    const { a: sealed, b: clear } = await compareParties(['--at-rest-key-file', keyFile], [])
    return `## Encryption at rest

${today()}, ${machine()}. Two local parties of ${PEERS} peers (2+1) in one run: one with \`--at-rest-key-file\` (every chunk of every
fragment sealed with AES-256-GCM before it is written, opened when read), one without. A 1 GiB put and get on each in turn,
${RUNS} times; medians. CPU is all peers' user + system seconds for one 1 GiB put (or get).

| fragments on disk | put GB/s | put CPU-s/GiB | get GB/s | get CPU-s/GiB |
|---|---|---|---|---|
${row('encrypted (AES-256-GCM)', sealed)}
${row('in clear (reference)', clear)}

Throughput cost: put ${cost(sealed.put, clear.put)}, get ${cost(sealed.get, clear.get)}.
${runs('encrypted', sealed, clear)}
`
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const fresh = (): Figures => ({ put: [], get: [], putCpu: [], getCpu: [] })
