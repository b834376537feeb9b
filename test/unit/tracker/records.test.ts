import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { compareRecords, newestRecord } from '../../../src/peer/tracker/index.ts'
import { aRecord, moved } from '../../helpers/records.ts'

const base = aRecord()

describe('compareRecords', () => {
  it('orders by version, then revision', () => {
    assert.ok(compareRecords({ ...base, version: '0000000000002-00000000', revision: 0 }, base) > 0)
    assert.ok(compareRecords({ ...base, revision: 2 }, base) > 0)
    assert.equal(compareRecords({ ...base }, base), 0)
  })

  it('breaks a tie between two repairs of the same revision the same way everywhere', () => {
    const one = moved(base, 2, '00000000000000dd')
    const two = moved(base, 2, '00000000000000ee')
    assert.ok(compareRecords(one, two) !== 0)
    assert.equal(Math.sign(compareRecords(one, two)), -Math.sign(compareRecords(two, one)))
    // Whatever order replicas hear them in, they keep the same one.
    assert.deepEqual(newestRecord([one, two]), newestRecord([two, one]))
    // The fragment list's order does not matter, only its content.
    assert.equal(compareRecords(one, { ...one, fragments: [...one.fragments].reverse() }), 0)
  })
})
