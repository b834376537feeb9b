import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { type Arc, ArcParts, BucketDigests, bucketOf, fingerprint, membersIn, PartDigests } from '../../../src/peer/ring/index.ts'

const hex16 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((n) => n.toString(16).padStart(16, '0'))
/** Positions that often share a bucket with the arc's ends (the hard cases). */
const near = (ends: string[]): fc.Arbitrary<string> =>
  fc.oneof(
    hex16,
    fc.tuple(fc.constantFrom(...ends), fc.bigInt({ min: 0n, max: (1n << 48n) - 1n })).map(([p, low]) => p.slice(0, 4) + low.toString(16).padStart(12, '0')),
  )

describe('bucket digests', () => {
  it('bucket digests answer each part as a brute-force count over the fragments would, and list what is in the selected parts', () => {
    fc.assert(
      fc.property(
        fc.tuple(hex16, hex16, fc.boolean()).chain(([from, to, whole]) => {
          const arc: Arc = { from, to: whole ? from : to }
          return fc.tuple(fc.constant(arc), fc.uniqueArray(near([from, to]), { maxLength: 60 }), fc.integer({ min: 1, max: 300 }))
        }),
        fc.array(fc.boolean(), { minLength: 60, maxLength: 60 }),
        ([arc, positions, count], removed) => {
          const digests = new BucketDigests()
          const held = positions.map((p, i) => ({ key: `k${i}`, position: p, print: fingerprint(p, 'v', i, 'd') }))
          for (const h of held) digests.add(bucketOf(h.position), h.print, 100)
          const kept = held.filter((_, i) => !removed[i])
          for (const h of held.filter((_, i) => removed[i])) digests.remove(bucketOf(h.position), h.print, 100)
          // What the store's table answers for one bucket.
          const inBucket = (bucket: number) => kept.filter((h) => bucketOf(h.position) === bucket)
          const parts = new ArcParts(arc, count)
          const brute = new PartDigests(parts.count)
          for (const h of kept) {
            const part = parts.partOf(h.position)
            if (part !== undefined) brute.add(part, h.print)
          }
          assert.deepEqual(digests.parts(parts, inBucket).encode(), brute.encode())
          const selected = new Set(Array.from({ length: parts.count }, (_, i) => i).filter((i) => i % 3 === 0))
          const expected = kept.filter((h) => selected.has(parts.partOf(h.position) ?? -1)).map((h) => h.key)
          assert.deepEqual([...membersIn(parts, selected, inBucket)].map((m) => m.key).sort(), expected.sort())
        },
      ),
      { numRuns: 40 },
    )
  })
})
