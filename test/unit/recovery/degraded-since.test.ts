import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DegradedSince } from '../../../src/peer/recovery/degraded-since.ts'

describe('when files were first seen degraded', () => {
  it('keeps the first time across passes, forgets what a pass finds whole, and gives the last pass its entries up as they carry over', () => {
    const since = new DegradedSince()
    since.newPass()
    since.note([], new Set(['a', 'b', 'c']), 100)
    since.newPass()
    // A full pass finds a and b degraded again (b in a later chunk) and c whole.
    since.note([], new Set(['a']), 200)
    since.note([], new Set(['b']), 300)
    assert.equal(since.recovered('a'), 100, 'degraded since the first pass saw it')
    assert.equal(since.recovered('a'), undefined, 'told once')
    assert.equal(since.recovered('c'), undefined, 'not degraded in this pass')
    since.newPass()
    // b was carried over into the last pass: the time it brought along is the first one, not the last pass's.
    since.note([], new Set(['b']), 400)
    assert.equal(since.recovered('b'), 100)
  })

  it('once a full pass has ended, a census of changes takes nothing from the pass before it', () => {
    const since = new DegradedSince()
    since.note([], new Set(['a']), 100)
    since.newPass()
    // The full pass found a whole; a census of changes after it finds a degraded again: degraded since then, not since 100.
    since.passDone()
    since.note(['a'], new Set(['a']), 500)
    assert.equal(since.recovered('a'), 500)
  })

  it('in a pass over some names, forgets those it looked at and found whole, and keeps the others', () => {
    const since = new DegradedSince()
    since.note([], new Set(['a', 'b']), 100)
    since.note(['a', 'x'], new Set(['x']), 200)
    assert.equal(since.recovered('a'), undefined)
    assert.equal(since.recovered('b'), 100)
    assert.equal(since.recovered('x'), 200)
  })
})
