import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { mapLimited } from '../../../src/shared/concurrency.ts'

describe('mapLimited', () => {
  it('runs every job, at most `workers` at once, and gives the results in item order', async () => {
    let running = 0
    let most = 0
    const out = await mapLimited([5, 1, 4, 2, 3, 0], 2, async (n, i) => {
      running++
      most = Math.max(most, running)
      await new Promise((r) => setImmediate(r))
      running--
      return n * 10 + i
    })
    assert.deepEqual(out, [50, 11, 42, 23, 34, 5])
    assert.equal(most, 2)
    assert.deepEqual(await mapLimited([], 4, async () => 1), [])
  })
})
