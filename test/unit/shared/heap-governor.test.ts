import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { HeapGovernor, type HeapState, heapAction, RELEASE_INTERVAL_MS } from '../../../src/shared/heap-governor.ts'
import { waitFor } from '../../helpers/wait.ts'

/**
 * Garbage that reaches the old generation: each batch stays referenced across
 * the allocation of the next ones (and so across scavenges) before it is let go.
 */
function promoteGarbage(): void {
  const kept: unknown[][] = []
  for (let batch = 0; batch < 8; batch++) {
    kept.push(Array.from({ length: 20_000 }, (_, i) => ({ i, text: `garbage ${batch} ${i}` })))
    if (kept.length > 4) kept.shift()
  }
}

function counted(slackBytes: number): { governor: HeapGovernor; asked: () => number } {
  let n = 0
  const governor = new HeapGovernor({ slackBytes, collected: () => n++ })
  return { governor, asked: () => n }
}

describe('HeapGovernor', () => {
  it('asks for full collections as garbage passes the slack, and never with a slack of 0 or once stopped', async () => {
    const active = counted(2 * 2 ** 20)
    const off = counted(0)
    const stopped = counted(2 * 2 ** 20)
    for (const g of [active, off, stopped]) g.governor.start()
    try {
      await waitFor(
        'a governor to ask twice',
        async () => {
          promoteGarbage()
          // Lets the GC observer's entries arrive.
          await new Promise((r) => setImmediate(r))
          return active.asked() >= 2
        },
        { timeoutMs: 60_000, intervalMs: 1 },
      )
      assert.ok(stopped.asked() >= 1, 'a second governor with the same slack asked too')
      await stopped.governor.stop()
      const before = { active: active.asked(), stopped: stopped.asked() }
      await waitFor(
        'the running governor to ask twice more',
        async () => {
          promoteGarbage()
          await new Promise((r) => setImmediate(r))
          return active.asked() >= before.active + 2
        },
        { timeoutMs: 60_000, intervalMs: 1 },
      )
      assert.equal(stopped.asked(), before.stopped, 'a stopped governor asks for nothing')
      assert.equal(off.asked(), 0, 'a slack of 0 leaves collection to V8')
    } finally {
      for (const g of [active, off, stopped]) await g.governor.stop()
    }
  })

  it('has the pages a dropped heap left behind given back to the system', async () => {
    let reasons: string[] = []
    const governor = new HeapGovernor({ slackBytes: 8 * 2 ** 20, collected: (reason) => reasons.push(reason) })
    governor.start()
    try {
      // Some 80 MB of live objects, then let go: a full collection frees their pages into V8's pool.
      let held: unknown[] | undefined = Array.from({ length: 600_000 }, (_, i) => ({ i, text: `held ${i}` }))
      assert.equal(held.length, 600000)
      held = undefined
      reasons = []
      await waitFor(
        'the governor to have the pages given back',
        async () => {
          promoteGarbage()
          await new Promise((r) => setImmediate(r))
          return reasons.includes('pages')
        },
        { timeoutMs: 60_000, intervalMs: 1 },
      )
    } finally {
      await governor.stop()
    }
  })
})

const MiB = 2 ** 20
const SLACK = 32 * MiB
const state = (over: Partial<HeapState> = {}): HeapState => ({
  oldUsed: 60 * MiB,
  paged: 90 * MiB,
  floor: 60 * MiB,
  pagedPeak: 90 * MiB,
  asked: false,
  releasedAt: Number.NEGATIVE_INFINITY,
  ...over,
})

describe('heapAction', () => {
  it('asks for a full collection once the old generation gathered the slack since the last', () => {
    const recently = { releasedAt: 1_000 }
    assert.equal(heapAction(state({ ...recently, oldUsed: 60 * MiB + SLACK - 1 }), 1_000, SLACK, false), 'none')
    assert.equal(heapAction(state({ ...recently, oldUsed: 60 * MiB + SLACK }), 1_000, SLACK, false), 'collect')
  })

  it('makes a due full collection one that gives pages back, at most once per interval', () => {
    const due = state({ oldUsed: 60 * MiB + SLACK, releasedAt: 1_000 })
    assert.equal(heapAction(due, 1_000 + RELEASE_INTERVAL_MS - 1, SLACK, false), 'collect')
    assert.equal(heapAction(due, 1_000 + RELEASE_INTERVAL_MS, SLACK, false), 'release')
    assert.equal(heapAction(state({ oldUsed: 60 * MiB + SLACK - 1 }), 0, SLACK, false), 'none')
  })

  it('asks for nothing while a collection it asked for is under way', () => {
    assert.equal(heapAction(state({ oldUsed: 200 * MiB, asked: true }), 0, SLACK, false), 'none')
    assert.equal(heapAction(state({ pagedPeak: 400 * MiB, asked: true }), 0, SLACK, true), 'none')
  })

  it('has the freed pages given back after a full collection once the pool passes the slack', () => {
    assert.equal(heapAction(state({ pagedPeak: 90 * MiB + SLACK - 1 }), 0, SLACK, true), 'none')
    assert.equal(heapAction(state({ pagedPeak: 90 * MiB + SLACK }), 0, SLACK, true), 'release')
  })

  it('gives pages back at most once per interval', () => {
    const pooled = state({ pagedPeak: 300 * MiB, releasedAt: 1_000 })
    assert.equal(heapAction(pooled, 1_000 + RELEASE_INTERVAL_MS - 1, SLACK, true), 'none')
    assert.equal(heapAction(pooled, 1_000 + RELEASE_INTERVAL_MS, SLACK, true), 'release')
  })

  it('looks at the pool only after a full collection: a scavenge frees no pages', () => {
    assert.equal(heapAction(state({ pagedPeak: 300 * MiB }), 0, SLACK, false), 'none')
  })
})
