import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  chunkBytes,
  chunkOffset,
  ErasureCoder,
  fragmentBytes,
  joinStripe,
  shardBytes,
  splitStripe,
  stripeCount,
  stripeLength,
} from '../../../src/peer/codec/index.ts'

describe('stripe layout', () => {
  it('cuts a file into stripes and aligned shards', () => {
    const layout = { k: 2, m: 1, stripeBytes: 1024 }
    assert.equal(stripeCount(0, layout), 0)
    assert.equal(stripeCount(1024, layout), 1)
    assert.equal(stripeCount(1025, layout), 2)
    assert.equal(stripeLength(1025, layout, 1), 1)
    assert.equal(shardBytes(1, 2), 8)
    assert.equal(shardBytes(1024, 2), 512)
    assert.equal(shardBytes(1000, 3), 336)
    assert.equal(chunkBytes(1025, layout, 1), 8)
    assert.equal(chunkOffset(layout, 1), 512)
    assert.equal(fragmentBytes(1025, layout), 520)
    assert.equal(fragmentBytes(0, layout), 0)
  })

  it('split, encode, lose any m, rebuild and join give back every stripe (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 5000 }),
        fc.integer({ min: 0, max: 1000 }),
        (k, m, len, seed) => {
          const coder = new ErasureCoder(k, m)
          const stripe = randomBytes(len)
          const data = splitStripe(stripe, k)
          assert.ok(data.every((d) => d.length === shardBytes(len, k)))
          const all: (Buffer | undefined)[] = [...data, ...coder.encode(data)]
          for (let i = 0; i < m; i++) all[(seed + i * 7) % (k + m)] = undefined
          const rebuilt = coder.reconstruct(all)
          assert.deepEqual(Buffer.concat(joinStripe(rebuilt.slice(0, k), len)), stripe)
        },
      ),
      { numRuns: 300 },
    )
  })
})
