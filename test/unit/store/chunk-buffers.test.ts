import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ChunkBuffers } from '../../../src/peer/store/index.ts'

describe('chunk buffers a holder serves fragments from', () => {
  it('hands a given-back block out again, for the same or a shorter chunk of its size', () => {
    const pool = new ChunkBuffers()
    const a = pool.take(512 * 1024)
    assert.equal(a.length, 512 * 1024)
    pool.give(a)
    const b = pool.take(500 * 1024)
    assert.equal(b.buffer, a.buffer)
    assert.equal(b.length, 500 * 1024)
  })

  it('never hands one block to two takers: a block given back twice is kept once', () => {
    const pool = new ChunkBuffers()
    const a = pool.take(100_000)
    pool.give(a)
    pool.give(a)
    const b = pool.take(100_000)
    const c = pool.take(100_000)
    assert.equal(b.buffer, a.buffer)
    assert.notEqual(c.buffer, a.buffer)
  })

  it('ignores buffers it did not make, and keeps no more than its limit waiting', () => {
    const pool = new ChunkBuffers(128 * 1024)
    const foreign = Buffer.alloc(64 * 1024)
    pool.give(foreign)
    assert.notEqual(pool.take(64 * 1024).buffer, foreign.buffer)
    const [x, y, z] = [pool.take(64 * 1024), pool.take(64 * 1024), pool.take(64 * 1024)]
    for (const buf of [x, y, z]) pool.give(buf)
    const again = new Set([pool.take(64 * 1024).buffer, pool.take(64 * 1024).buffer, pool.take(64 * 1024).buffer])
    assert.ok(again.has(x.buffer) && again.has(y.buffer))
    assert.ok(!again.has(z.buffer), 'the third block was beyond the limit')
  })
})
