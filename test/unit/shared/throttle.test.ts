import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ManualClock } from '../../../src/shared/clock.ts'
import { Throttle } from '../../../src/shared/throttle.ts'

describe('Throttle', () => {
  it('lets a second of rate through at once, then makes the caller wait for the rest', async () => {
    const clock = new ManualClock()
    const throttle = new Throttle(1000, clock)
    const started = performance.now()
    await throttle.take(1000)
    assert.ok(performance.now() - started < 50, 'the first second of rate is not delayed')
    const waited = performance.now()
    await throttle.take(100) // 100 bytes over budget at 1000 B/s: about 100 ms
    assert.ok(performance.now() - waited >= 90, 'going over budget waits')
  })

  it('refills with time and never waits when unlimited', async () => {
    const clock = new ManualClock()
    const throttle = new Throttle(1000, clock)
    await throttle.take(1000)
    clock.advance(1000)
    const t = performance.now()
    await throttle.take(1000)
    assert.ok(performance.now() - t < 50)
    const free = new Throttle(0)
    await free.take(1e12)
  })
})
