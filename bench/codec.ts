import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { ReedSolomonErasure } from '@subspace/reed-solomon-erasure.wasm'
import { ErasureCoder, gfMul, mulTable } from '../src/peer/codec/index.ts'
import { machine, median, today } from './lib.ts'
import { isalRates, isalUnavailable } from './native/isal.ts'

const STRIPE = 1024 * 1024
const ROUNDS = 200
const RUNS = 5

/** GB/s of input over ROUNDS calls of fn, median of RUNS. */
function rate(fn: () => void): number {
  fn()
  const runs: number[] = []
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now()
    for (let i = 0; i < ROUNDS; i++) fn()
    runs.push((ROUNDS * STRIPE) / ((performance.now() - t0) / 1000) / 1e9)
  }
  return median(runs)
}

/** The textbook encoder: one 256-entry product table per coefficient, a byte at a time (what "plain-JS Reed-Solomon" means in BASELINES.md). */
function tableEncode(data: Buffer[], parity: Buffer[], tables: Uint8Array[][]): void {
  for (let p = 0; p < parity.length; p++) {
    const out = parity[p] as Buffer
    out.fill(0)
    for (let d = 0; d < data.length; d++) {
      const src = data[d] as Buffer
      const t = tables[p]?.[d] as Uint8Array
      for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) ^ (t[src[i] as number] as number)
    }
  }
}

export async function codecBench(): Promise<string> {
  const wasmPath = createRequire(import.meta.url).resolve('@subspace/reed-solomon-erasure.wasm/dist/reed_solomon_erasure_bg.wasm')
  const wasmBytes = readFileSync(wasmPath)
  const wasm = ReedSolomonErasure.fromBytes(wasmBytes)
  // The library's allocator runs out of memory after a few hundred reconstructs in one instance
  // (RuntimeError: memory access out of bounds in wee_alloc), so decode gets a fresh instance every 50 calls.
  let decoder = ReedSolomonErasure.fromBytes(wasmBytes)
  let decodes = 0
  const rows: string[] = []
  for (const [k, m] of [
    [2, 1],
    [4, 2],
  ] as const) {
    const shard = STRIPE / k
    const coder = new ErasureCoder(k, m)
    const js = new ErasureCoder(k, m, { simd: false })
    const stripe = randomBytes(STRIPE)
    const data = Array.from({ length: k }, (_, i) => stripe.subarray(i * shard, (i + 1) * shard))
    const parity = coder.encode(data)
    const lost = m === 1 ? [0] : [0, 1]
    const damaged = [...data, ...parity].map((s, i) => (lost.includes(i) ? undefined : s))
    // Encode into parity buffers reused stripe after stripe, as a put's coding worker does; decode as a get does.
    const into = coder.encode(data)
    const ours = rate(() => coder.encodeInto(data, into))
    // Decode into one slot reused stripe after stripe, as a rebuild does; and into fresh buffers, as a get does.
    const slot = Buffer.allocUnsafe(2 * m * shard)
    const oursDecode = rate(() => {
      let used = 0
      coder.reconstruct(damaged, (bytes) => {
        used += bytes
        return slot.subarray(used - bytes, used)
      })
    })
    const oursDecodeFresh = rate(() => coder.reconstruct(damaged))
    const jsEncode = rate(() => js.encodeInto(data, into))
    const jsDecode = rate(() => js.reconstruct(damaged))
    const isal = isalUnavailable() ? undefined : await isalRates(k, m, STRIPE, ROUNDS, RUNS)
    const contiguous = Buffer.alloc(shard * (k + m))
    stripe.copy(contiguous)
    const ref = rate(() => wasm.encode(contiguous, k, m))
    const available = Array.from({ length: k + m }, (_, i) => !lost.includes(i))
    let refDecode = Number.NaN
    try {
      refDecode = rate(() => {
        if (++decodes % 50 === 0) decoder = ReedSolomonErasure.fromBytes(wasmBytes)
        decoder.reconstruct(contiguous, k, m, available)
      })
    } catch (err) {
      console.error(`wasm reconstruct ${k}+${m} failed: ${(err as Error).message}`)
    }
    const coeffs = Array.from({ length: m }, (_, p) => Array.from({ length: k }, (_, d) => mulTable(gfMul(p + 1, d + 1))))
    const outs = Array.from({ length: m }, () => Buffer.alloc(shard))
    const table = rate(() => tableEncode(data, outs, coeffs))
    const memcpy = rate(() => stripe.copy(contiguous))
    const f = (x: number | undefined): string => (x === undefined ? '–' : x.toFixed(2))
    rows.push(
      `| ${k}+${m} | ${f(ours)} | ${f(oursDecode)} | ${f(oursDecodeFresh)} | ${f(jsEncode)} | ${f(jsDecode)} | ${f(isal?.encode)} | ${f(isal?.decode)} | ${f(ref)} | ${Number.isNaN(refDecode) ? 'crashed' : f(refDecode)} | ${f(table)} | ${isal ? `${(ours / isal.encode).toFixed(2)} / ${(oursDecode / isal.decode).toFixed(2)}` : '–'} | ${(ours / ref).toFixed(2)}× | ${memcpy.toFixed(1)} |`,
    )
  }
  return `## Erasure codec

${today()}, ${machine()}. GB/s of file data through one 1 MiB stripe at a time, median of ${RUNS} runs of ${ROUNDS} stripes, one thread.
Decode rebuilds the lost data fragments (fragment 0 for 2+1; 0 and 1 for 4+2) from the rest.
Encode codes into parity buffers reused stripe after stripe, as a put's coding worker does. Decode writes into one buffer reused
stripe after stripe, as a rebuild does; "decode, fresh" returns new buffers, as a get hands them on to its response (their first
touch, page faults included, is in that figure).
Ours runs on WebAssembly SIMD (nibble tables with \`i8x16.swizzle\`, \`src/peer/codec/gf-simd.wat\`); "ours JS" is the JavaScript fallback
(XOR on 32-bit words, products two bytes per lookup in a 64K-entry table). References measured in the same run: ISA-L 2.30 (Debian libisal-dev,
native AVX2/AVX-512 assembly, \`bench/native/isal-codec.c\`${isalUnavailable() ? `; not measured here: ${isalUnavailable()}` : ''}), [@subspace/reed-solomon-erasure.wasm](https://www.npmjs.com/package/@subspace/reed-solomon-erasure.wasm)
(the Rust reed-solomon-erasure crate compiled to WebAssembly; of the npm coders it is the fastest that installs without compiling or downloading native code),
a textbook 256-entry-table JavaScript encoder, and \`Buffer.copy\` of the stripe (memory bandwidth).

| k+m | ours encode | ours decode | ours decode, fresh | ours JS encode | ours JS decode | ISA-L encode | ISA-L decode | wasm encode | wasm decode | table-JS encode | ours / ISA-L (enc / dec) | ours / wasm | memcpy |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

Goals (issue 24): 4+2 encode ≥ 5 and decode ≥ 4 GB/s, 2+1 ≥ 15 GB/s. Ours copies each 32 KiB segment of the shards into the
WebAssembly memory and the results out (WebAssembly reaches only its own memory); ISA-L works on the buffers where they are.
The wasm library's reconstruct of 1 MiB stripes fails inside its allocator (RuntimeError: memory access out of bounds in wee_alloc),
even re-instantiated every 50 calls; "crashed" marks that. Its encode works.
`
}
