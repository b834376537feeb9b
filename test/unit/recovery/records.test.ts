import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { FileRecord } from '../../../src/peer/protocol/index.ts'
import { compareRecords, newestRecord } from '../../../src/peer/tracker/index.ts'

const base: FileRecord = {
  name: 'a',
  version: '0000000000001-00000000',
  revision: 1,
  deleted: false,
  size: 10,
  hash: 'f'.repeat(64),
  created: 1,
  coding: { k: 2, m: 1, stripeBytes: 1024 * 1024 },
  fragments: [
    { index: 0, holder: '00000000000000aa', digest: 'a'.repeat(64) },
    { index: 1, holder: '00000000000000bb', digest: 'b'.repeat(64) },
    { index: 2, holder: '00000000000000cc', digest: 'c'.repeat(64) },
  ],
}

describe('compareRecords', () => {
  it('orders by version, then revision', () => {
    assert.ok(compareRecords({ ...base, version: '0000000000002-00000000', revision: 0 }, base) > 0)
    assert.ok(compareRecords({ ...base, revision: 2 }, base) > 0)
    assert.equal(compareRecords({ ...base }, base), 0)
  })

  it('breaks a tie between two repairs of the same revision the same way everywhere', () => {
    const one = { ...base, revision: 2, fragments: base.fragments.map((f) => (f.index === 2 ? { ...f, holder: '00000000000000dd' } : f)) }
    const two = { ...base, revision: 2, fragments: base.fragments.map((f) => (f.index === 2 ? { ...f, holder: '00000000000000ee' } : f)) }
    assert.ok(compareRecords(one, two) !== 0)
    assert.equal(Math.sign(compareRecords(one, two)), -Math.sign(compareRecords(two, one)))
    // Whatever order replicas hear them in, they keep the same one.
    assert.deepEqual(newestRecord([one, two]), newestRecord([two, one]))
    // The fragment list's order does not matter, only its content.
    assert.equal(compareRecords(one, { ...one, fragments: [...one.fragments].reverse() }), 0)
  })
})
