import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { InFlight, Lifecycle } from '../../../src/shared/lifecycle.ts'

describe('Lifecycle', () => {
  it('starts components in order and stops them in reverse, each stop awaited, a failing one not stopping the rest', async () => {
    const log: string[] = []
    const life = new Lifecycle()
    const component = (name: string, fail = false) => ({
      start: (signal?: AbortSignal) => {
        log.push(`start ${name}`)
        signal?.addEventListener('abort', () => log.push(`abort seen by ${name}`), { once: true })
      },
      stop: async () => {
        await new Promise((r) => setImmediate(r))
        log.push(`stop ${name}`)
        if (fail) throw new Error(`${name} broke`)
      },
    })
    await life.start('a', component('a'))
    await life.start('b', component('b', true))
    await life.start('c', component('c'))
    const failures = await life.stop()
    assert.deepEqual(log, ['start a', 'start b', 'start c', 'abort seen by a', 'abort seen by b', 'abort seen by c', 'stop c', 'stop b', 'stop a'])
    assert.deepEqual([...failures.keys()], ['b'])
    assert.deepEqual([...(await life.stop()).keys()], [], 'a second stop has nothing left to stop')
  })
})

describe('InFlight', () => {
  it('settles once the work in flight is done, or at its deadline', async () => {
    const inFlight = new InFlight()
    await inFlight.settled(AbortSignal.timeout(10_000)) // nothing in flight: at once
    const done = inFlight.enter()
    let settled = false
    const waiting = inFlight.settled(AbortSignal.timeout(60_000)).then(() => {
      settled = true
    })
    await new Promise((r) => setImmediate(r))
    assert.equal(settled, false)
    done()
    done() // once only
    await waiting
    assert.equal(inFlight.count, 0)
    inFlight.enter()
    const started = performance.now()
    await inFlight.settled(AbortSignal.timeout(50))
    assert.ok(performance.now() - started >= 40, 'gives up at the deadline when the work never ends')
  })
})
