import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { readOrder } from '../../../src/peer/files/stripe-reader.ts'
import type { FileRecord } from '../../../src/peer/protocol/index.ts'

const [A, B, C, D] = ['a'.repeat(16), 'b'.repeat(16), 'c'.repeat(16), 'd'.repeat(16)]
const record: FileRecord = {
  name: 'f',
  version: '0000000000001-00000000',
  revision: 0,
  deleted: false,
  size: 3000,
  hash: 'a'.repeat(64),
  created: 1,
  coding: { k: 2, m: 1, stripeBytes: 1 << 20 },
  // Listed out of index order, as a repaired record may be.
  fragments: [
    { index: 2, holder: C, digest: 'c'.repeat(64) },
    { index: 1, holder: B, digest: 'b'.repeat(64) },
    { index: 0, holder: A, digest: 'a'.repeat(64) },
  ],
}
const everyone = (): boolean => true
const indices = (order: FileRecord['fragments']): number[] => order.map((f) => f.index)

describe('the order a read tries fragments in', () => {
  it('data fragments first, then parity, when this peer holds none', () => {
    assert.deepEqual(indices(readOrder(record, { self: D, whole: true, isGuest: everyone })), [0, 1, 2])
  })

  it('a small file: the fragment this peer holds first, even parity (no call to another guest for it)', () => {
    assert.deepEqual(indices(readOrder(record, { self: C, whole: true, isGuest: everyone })), [2, 0, 1])
    assert.deepEqual(indices(readOrder(record, { self: B, whole: true, isGuest: everyone })), [1, 0, 2])
  })

  it('a small file: the fragments its trackers brought with their answers come first too', () => {
    assert.deepEqual(indices(readOrder(record, { self: D, whole: true, isGuest: everyone, brought: new Set([2]) })), [2, 0, 1])
    assert.deepEqual(indices(readOrder(record, { self: A, whole: true, isGuest: everyone, brought: new Set([2]) })), [0, 2, 1])
  })

  it('a file read stripe by stripe keeps data first: decoding every stripe would cost more than a call', () => {
    assert.deepEqual(indices(readOrder(record, { self: C, whole: false, isGuest: everyone })), [0, 1, 2])
  })

  it('leaves out fragments whose holder is no guest', () => {
    assert.deepEqual(indices(readOrder(record, { self: C, whole: true, isGuest: (id) => id !== A })), [2, 1])
  })
})
