import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { HeapGovernor } from '../../../src/shared/heap-governor.ts'
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
})
