import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { leaderOnly } from '../../../src/operator/context.ts'
import type { KubeApi } from '../../../src/operator/kube/api.ts'
import { WorkQueue } from '../../../src/operator/queue.ts'

describe('operator work queue and leadership', () => {
  it('stop() takes no more work and waits for the reconciles under way', async () => {
    let release: () => void = () => undefined
    const started: string[] = []
    let finished = 0
    const queue = new WorkQueue(
      async (key) => {
        started.push(key)
        await new Promise<void>((r) => {
          release = r
        })
        finished++
        return {}
      },
      () => undefined,
    )
    queue.add('a')
    queue.add('a') // queued again while it runs: would run once more, unless the queue stops first
    let stopped = false
    const stopping = queue.stop().then(() => {
      stopped = true
    })
    await new Promise((r) => setImmediate(r))
    assert.equal(stopped, false, 'stop waits for the reconcile in flight')
    queue.add('b')
    release()
    await stopping
    assert.equal(finished, 1)
    assert.deepEqual(started, ['a'], 'nothing runs after stop')
  })

  it('a reconcile whose leadership ended makes no further API call', async () => {
    const calls: string[] = []
    const kube = { scale: async (n: string) => calls.push(n) } as unknown as KubeApi
    const term = new AbortController()
    const guarded = leaderOnly(kube, term.signal)
    await guarded.scale('ns', 'set', 3)
    term.abort(new Error('leadership lost'))
    await assert.rejects(async () => guarded.scale('ns', 'set', 4), /leadership lost/)
    assert.deepEqual(calls, ['ns'])
  })
})
