import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { assembleKernels } from '../../../scripts/wasm.ts'
import { ErasureCoder, simdAvailable } from '../../../src/peer/codec/index.ts'

/**
 * The WebAssembly SIMD arithmetic against the JavaScript one: the same
 * parity bytes, and every erasure of up to m shards rebuilt, for random
 * codings, lengths (across the 64-byte blocks and 32 KiB segments the
 * kernels work in) and contents.
 */
describe('erasure coding on WebAssembly SIMD', () => {
  it('runs here (Node 22 and later have WebAssembly SIMD)', () => {
    assert.equal(simdAvailable(), true)
  })

  it('encodes exactly as the JavaScript coder, and rebuilds any m lost shards', () => {
    const cases = fc
      .tuple(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 0, max: 4 }),
        fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 32_700, max: 70_000 })),
      )
      .chain(([k, m, len]) =>
        fc.tuple(
          fc.constant(k),
          fc.constant(m),
          fc.array(fc.uint8Array({ minLength: len, maxLength: len }), { minLength: k, maxLength: k }),
          fc.shuffledSubarray([...Array(k + m).keys()], { minLength: m, maxLength: m }),
        ),
      )
    fc.assert(
      fc.property(cases, ([k, m, data, lost]) => {
        const simd = new ErasureCoder(k, m)
        const js = new ErasureCoder(k, m, { simd: false })
        const parity = simd.encode(data)
        assert.deepEqual(parity, js.encode(data))
        const shards = [...data, ...parity].map((s, i) => (lost.includes(i) ? undefined : s))
        const rebuilt = simd.reconstruct(shards)
        for (const [i, s] of rebuilt.entries()) {
          assert.ok(Buffer.from(s).equals(Buffer.from(i < k ? (data[i] as Uint8Array) : (parity[i - k] as Uint8Array))), `shard ${i}`)
        }
        assert.deepEqual(rebuilt, js.reconstruct(shards))
      }),
      { numRuns: 150 },
    )
  })

  it('ships the kernels assembled from gf-simd.wat (npm run wasm)', async () => {
    const committed = await readFile(new URL('../../../src/peer/codec/gf-simd.wasm.ts', import.meta.url), 'utf8')
    assert.equal(committed, await assembleKernels(), 'src/peer/codec/gf-simd.wasm.ts is stale: run npm run wasm')
  })
})
