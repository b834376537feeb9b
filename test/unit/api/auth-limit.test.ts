import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { AuthLimiter } from '../../../src/peer/api/auth-limit.ts'

describe('failed authentication, held back per source', () => {
  it('lets a source fail a burst, then once per refill; others are not slowed', () => {
    const limiter = new AuthLimiter({ burst: 3, refillMs: 100, maxSources: 10 })
    for (let i = 0; i < 3; i++) {
      assert.equal(limiter.blockedFor('bad', 0), 0)
      limiter.failed('bad', 0)
    }
    assert.equal(limiter.blockedFor('bad', 0), 100)
    assert.equal(limiter.blockedFor('good', 0), 0)
    assert.equal(limiter.blockedFor('bad', 50), 50)
    assert.equal(limiter.blockedFor('bad', 100), 0)
    limiter.failed('bad', 100)
    assert.equal(limiter.blockedFor('bad', 100), 100)
    // Quiet long enough, it is forgotten.
    assert.equal(limiter.blockedFor('bad', 10_000), 0)
    assert.equal(limiter.sources, 0)
  })

  it('tracks a bounded number of sources, forgetting the oldest', () => {
    const limiter = new AuthLimiter({ burst: 1, refillMs: 1_000, maxSources: 100 })
    for (let i = 0; i < 10_000; i++) limiter.failed(`10.0.${i >> 8}.${i & 255}`, 0)
    assert.equal(limiter.sources, 100)
    assert.ok(limiter.blockedFor('10.0.39.15', 0) > 0, 'the latest are still held back')
    assert.equal(limiter.blockedFor('10.0.0.0', 0), 0, 'the oldest were forgotten')
  })
})
