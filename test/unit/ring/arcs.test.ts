import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { type Arc, ArcParts, BUCKETS, fingerprint, inArc, primaryArc, recordFingerprint, successors } from '../../../src/peer/ring/index.ts'

const hex16 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((n) => n.toString(16).padStart(16, '0'))
/** Positions that often share a bucket (the arc's ends are the hard cases). */
const position = (near: string[]): fc.Arbitrary<string> =>
  fc.oneof(
    hex16,
    fc.tuple(fc.constantFrom(...near), fc.bigInt({ min: 0n, max: (1n << 48n) - 1n })).map(([p, low]) => p.slice(0, 4) + low.toString(16).padStart(12, '0')),
  )
const arcAndPositions = fc.tuple(hex16, hex16, fc.boolean()).chain(([from, to, whole]) => {
  const arc: Arc = whole ? { from, to: from } : { from, to }
  return fc.tuple(fc.constant(arc), fc.uniqueArray(position([from, to]), { maxLength: 60 }), fc.integer({ min: 1, max: 300 }))
})

describe('ring arcs', () => {
  it('fingerprints are those the stored digests were summed from: SHA-256 of the UTF-8 fields, first 64 bits', () => {
    assert.equal(fingerprint('s/1/é.bin', 'v1', 2, 'abcd'), 17048114506712280935n)
    assert.equal(recordFingerprint('s/1/é.bin', 'v1', 3, true), 1224218327659903854n)
    assert.equal(recordFingerprint('x', 'v', 0, false), 16223915432993339764n)
  })

  it('a primary arc holds exactly the positions its guest is primary tracker of', () => {
    fc.assert(
      fc.property(fc.uniqueArray(hex16, { minLength: 1, maxLength: 6 }), fc.array(hex16, { maxLength: 40 }), (ids, positions) => {
        for (const p of positions) {
          const primary = successors(ids, p, 1)[0]
          for (const id of ids) assert.equal(inArc(p, primaryArc(ids, id)), id === primary, `${p} in the arc of ${id}`)
        }
      }),
    )
  })

  it('puts every position of the arc in one part, in ring order, and none outside it', () => {
    fc.assert(
      fc.property(arcAndPositions, ([arc, positions, count]) => {
        const parts = new ArcParts(arc, count)
        assert.ok(parts.count >= 1 && parts.count <= count)
        // Walking clockwise from the arc's start (position 0 for the whole ring), parts never go down.
        const start = arc.from === arc.to ? -1n : BigInt(`0x${arc.from}`)
        const key = (p: string): bigint => (BigInt(`0x${p}`) - start - 1n + (1n << 64n)) % (1n << 64n)
        const inside = positions.filter((p) => inArc(p, arc)).sort((a, b) => (key(a) < key(b) ? -1 : 1))
        let last = 0
        for (const p of positions) if (!inArc(p, arc)) assert.equal(parts.partOf(p), undefined)
        for (const p of inside) {
          const part = parts.partOf(p) as number
          assert.ok(part >= last && part < parts.count, `part ${part} of ${p} after ${last}`)
          last = part
        }
      }),
    )
  })

  it('splits the whole ring (a party of one) into the parts asked for', () => {
    const parts = new ArcParts({ from: '1234000000000000', to: '1234000000000000' }, 256)
    assert.equal(parts.count, 256)
    assert.equal(parts.partOf('0000000000000000'), 0)
    assert.equal(parts.partOf('ffffffffffffffff'), 255)
    assert.equal([...parts.buckets()].length, BUCKETS)
  })
})
