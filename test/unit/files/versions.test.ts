import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { floorOf, mayKeep, nextVersion } from '../../../src/peer/files/versions.ts'
import type { FileRecord } from '../../../src/peer/protocol/index.ts'

const recorded = (version: string): FileRecord => ({
  name: 'a',
  version,
  revision: 0,
  deleted: false,
  size: 1,
  hash: 'a'.repeat(64),
  created: 1,
  coding: { k: 2, m: 1, stripeBytes: 1 << 20 },
  fragments: [],
})

describe('versions of a put', () => {
  it('go forward from what the trackers know, even from a coordinator whose clock is behind', () => {
    const known = '1733380000000-ffffffff'
    const behind = nextVersion(1733370000000)
    assert.ok(behind < known)
    const floor = floorOf({ record: recorded(known), pending: undefined })
    assert.equal(mayKeep(behind, floor, 1), false, 'a version below the recorded one is not kept')
    const next = nextVersion(1733370000000, floor)
    assert.ok(next > known)
    assert.equal(mayKeep(next, floor, 2), true)
  })

  it('the floor is the newest of the recorded and the announced version', () => {
    assert.equal(floorOf({ record: undefined, pending: undefined }), undefined)
    assert.equal(floorOf({ record: recorded('1733380000000-00000001'), pending: '1733380000005-00000000' }), '1733380000005-00000000')
    assert.equal(floorOf({ record: recorded('1733380000009-00000001'), pending: '1733380000005-00000000' }), '1733380000009-00000001')
  })

  it('a put goes ahead after three rounds of racing, whatever the floor', () => {
    assert.equal(mayKeep('1733380000000-00000000', '1733380000001-00000000', 2), false)
    assert.equal(mayKeep('1733380000000-00000000', '1733380000001-00000000', 3), true)
  })
})
