import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { LoadEstimate } from '../../../src/peer/files/index.ts'
import type { GuestId } from '../../../src/peer/protocol/index.ts'
import { ManualClock } from '../../../src/shared/clock.ts'

const a = 'a'.repeat(16) as GuestId
const b = 'b'.repeat(16) as GuestId

describe('LoadEstimate', () => {
  it('adds what was placed on a guest to what it reported, for two seconds', () => {
    const clock = new ManualClock()
    const load = new LoadEstimate((id) => (id === a ? 1000 : id === b ? 50 : undefined), clock)
    load.placed(a, 10)
    clock.advance(1_000)
    load.placed(a, 5)
    load.placed(b, 7)
    assert.equal(load.held(a), 1015)
    assert.equal(load.held(b), 57)
    clock.advance(1_001)
    assert.equal(load.held(a), 1005, 'the first placement is past two seconds')
    clock.advance(1_000)
    assert.equal(load.held(a), 1000)
    assert.equal(load.held(b), 50)
  })

  it('knows nothing of a guest that reported nothing, and ignores empty placements', () => {
    const clock = new ManualClock()
    const load = new LoadEstimate((id) => (id === a ? 0 : undefined), clock)
    load.placed(b, 100)
    load.placed(a, 0)
    assert.equal(load.held(b), undefined)
    assert.equal(load.held(a), 0)
  })

  it('keeps its sums right across many placements that expire in turn', () => {
    const clock = new ManualClock()
    const load = new LoadEstimate(() => 0, clock)
    for (let i = 0; i < 5_000; i++) {
      load.placed(i % 2 === 0 ? a : b, 1)
      clock.advance(1)
      load.held(a)
    }
    // The last 2,000 ms of placements, one per ms, alternating.
    assert.equal((load.held(a) ?? 0) + (load.held(b) ?? 0), 2_000)
  })
})
