import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { ErasureCoder, gfInv, gfMul, invert, xorInto } from '../../../src/peer/codec/index.ts'

function shardsOf(k: number, len: number): Buffer[] {
  return Array.from({ length: k }, () => randomBytes(len))
}

/** Every way to choose `size` of `n` indexes. */
function subsets(n: number, size: number): number[][] {
  if (size === 0) return [[]]
  if (n < size) return []
  return [...subsets(n - 1, size - 1).map((s) => [...s, n - 1]), ...subsets(n - 1, size)]
}

describe('GF(256)', () => {
  it('every non-zero element has an inverse', () => {
    for (let a = 1; a < 256; a++) assert.equal(gfMul(a, gfInv(a)), 1)
  })
  it('inverts matrices', () => {
    const m = [
      [1, 2],
      [3, 4],
    ]
    const inv = invert(m)
    const prod = m.map((row) => [0, 1].map((j) => row.reduce((acc, v, t) => acc ^ gfMul(v, inv[t]?.[j] ?? 0), 0)))
    assert.deepEqual(prod, [
      [1, 0],
      [0, 1],
    ])
  })
})

describe('erasure coding', () => {
  for (const [k, m] of [
    [2, 1],
    [4, 2],
    [3, 3],
    [6, 3],
    [1, 2],
  ] as const) {
    it(`${k}+${m}: any ${k} of ${k + m} shards rebuild every shard`, () => {
      const coder = new ErasureCoder(k, m)
      for (const len of [0, 1, 3, 4, 7, 1000, 4099]) {
        const data = shardsOf(k, len)
        const all = [...data, ...coder.encode(data)]
        for (const keep of subsets(k + m, k)) {
          const slots = all.map((s, i) => (keep.includes(i) ? s : undefined))
          const rebuilt = coder.reconstruct(slots)
          for (const [i, s] of rebuilt.entries()) assert.ok(s.equals(all[i] as Buffer), `${k}+${m} len ${len} keep ${keep} shard ${i}`)
        }
      }
    })
  }

  it('the first parity shard is the XOR of the data (m = 1 is RAID-5 parity)', () => {
    const coder = new ErasureCoder(3, 2)
    const data = shardsOf(3, 1025)
    const [p0] = coder.encode(data)
    const x = Buffer.alloc(1025)
    for (const d of data) for (let i = 0; i < d.length; i++) x[i] = (x[i] as number) ^ (d[i] as number)
    assert.ok(p0?.equals(x))
  })

  it('rebuilds into the buffers its allocator hands out (a rebuild reuses one slot stripe after stripe)', () => {
    const coder = new ErasureCoder(4, 2)
    const data = shardsOf(4, 4096)
    const parity = coder.encode(data)
    const slot = Buffer.alloc(4 * 4096, 0xee)
    let used = 0
    const alloc = (bytes: number): Buffer => {
      used += bytes
      return slot.subarray(used - bytes, used)
    }
    // Data shard 1 and parity shard 0 lost: one data shard decoded, then the parity re-encoded.
    const all = coder.reconstruct([data[0], undefined, data[2], data[3], undefined, parity[1]], alloc)
    assert.ok(all[1]?.equals(data[1] as Buffer))
    assert.ok(all[4]?.equals(parity[0] as Buffer))
    assert.equal(all[1]?.buffer, slot.buffer)
    assert.equal(all[4]?.buffer, slot.buffer)
    assert.equal(used, 3 * 4096)
  })

  it('xor works on unaligned views', () => {
    const big = randomBytes(100)
    const a = big.subarray(1, 42)
    const b = big.subarray(3, 44)
    const out = Buffer.alloc(41)
    xorInto(out, [a, b])
    for (let i = 0; i < 41; i++) assert.equal(out[i], (a[i] as number) ^ (b[i] as number))
  })

  it('refuses too few shards with a coded error', () => {
    const coder = new ErasureCoder(2, 1)
    assert.throws(() => coder.reconstruct([randomBytes(4), undefined, undefined]), { code: 'ERR_NOT_ENOUGH_FRAGMENTS' })
    assert.throws(() => new ErasureCoder(0, 1), { code: 'ERR_INVALID_ARGUMENT' })
  })

  it('random k, m, data and losses always round-trip (property)', () => {
    const cases = fc
      .tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 300 }))
      .chain(([k, m, len]) =>
        fc.tuple(fc.constant(k), fc.constant(m), fc.constant(len), fc.shuffledSubarray([...Array(k + m).keys()], { minLength: m, maxLength: m })),
      )
    fc.assert(
      fc.property(cases, ([k, m, len, lostList]) => {
        const coder = new ErasureCoder(k, m)
        const data = shardsOf(k, len)
        const all = [...data, ...coder.encode(data)]
        const lost = new Set(lostList)
        const rebuilt = coder.reconstruct(all.map((x, i) => (lost.has(i) ? undefined : x)))
        for (const [i, x] of rebuilt.entries()) assert.ok(x.equals(all[i] as Buffer))
      }),
      { numRuns: 200 },
    )
  })
})
