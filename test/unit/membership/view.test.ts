import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { applyChange, checkNewcomer, coordinatorOf, foundingView, isQuorum, viewDigest } from '../../../src/peer/membership/index.ts'
import type { Change, Newcomer, View } from '../../../src/peer/protocol/index.ts'

const g = (n: number, incarnation = 1): Newcomer => ({ id: n.toString(16).padStart(16, '0'), address: `127.0.0.1:${7400 + n}`, apiPort: 7480 + n, incarnation })
const add = (...ns: Newcomer[]): Change => ({ add: ns, remove: [], update: [] })
const ids = (v: View): string[] => v.guests.map((x) => x.id)

describe('guest list changes', () => {
  it('appends newcomers in order, removes the removed, bumps the epoch', () => {
    let v = foundingView(g(1))
    v = applyChange(v, add(g(2), g(3)))
    assert.equal(v.epoch, 2)
    assert.deepEqual(ids(v), [g(1).id, g(2).id, g(3).id])
    v = applyChange(v, { add: [g(4)], remove: [{ id: g(2).id, reason: 'dead' }], update: [] })
    assert.deepEqual(ids(v), [g(1).id, g(3).id, g(4).id])
    assert.equal(v.guests.at(-1)?.since, 3)
  })

  it('the first guest not excluded coordinates', () => {
    const v = applyChange(foundingView(g(1)), add(g(2), g(3)))
    assert.equal(coordinatorOf(v)?.id, g(1).id)
    assert.equal(coordinatorOf(v, new Set([g(1).id]))?.id, g(2).id)
    assert.equal(coordinatorOf(v, new Set([g(1).id, g(2).id, g(3).id])), undefined)
  })

  it('a quorum is more than half, or exactly half holding the longest-standing guest', () => {
    const four = applyChange(foundingView(g(1)), add(g(2), g(3), g(4)))
    const set = (...ns: number[]): Set<string> => new Set(ns.map((n) => g(n).id))
    assert.ok(isQuorum(four, set(1, 2, 3)))
    assert.ok(isQuorum(four, set(1, 4)), 'half, with the longest-standing guest')
    assert.ok(!isQuorum(four, set(2, 3)), 'half, without it')
    assert.ok(!isQuorum(four, set(9, 8, 7)), 'strangers count for nothing')
    const two = applyChange(foundingView(g(1)), add(g(2)))
    assert.ok(isQuorum(two, set(1)) && !isQuorum(two, set(2)), 'of two guests only the first may go on alone')
    // Any two quorums of one list share a guest: two sides of a split can never both change it.
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.array(fc.boolean(), { minLength: 9, maxLength: 9 }), (n, side) => {
        const v: View = { epoch: 1, guests: Array.from({ length: n }, (_, i) => ({ ...g(i + 1), since: 1 })) }
        const a = new Set(v.guests.filter((_, i) => side[i]).map((x) => x.id))
        const b = new Set(v.guests.filter((_, i) => !side[i]).map((x) => x.id))
        assert.ok(!(isQuorum(v, a) && isQuorum(v, b)))
      }),
    )
  })

  it('an identity is one peer: a newer start updates or replaces its entry, an older start is refused', () => {
    const v = applyChange(foundingView(g(1)), add(g(2, 3), g(3)))
    assert.deepEqual(checkNewcomer(v, g(5)), { verdict: 'new' })
    assert.deepEqual(checkNewcomer(v, g(2, 3)), { verdict: 'present' })
    assert.deepEqual(checkNewcomer(v, g(2, 4), true), { verdict: 'updates' }, 'a restart that kept its membership state')
    assert.deepEqual(checkNewcomer(v, { ...g(2, 4), address: '10.0.0.9:7400' }, true), { verdict: 'updates' }, 'the same, at a new address')
    assert.deepEqual(checkNewcomer(v, g(2, 4)), { verdict: 'replaces' }, 'a restart that lost it')
    assert.equal(checkNewcomer(v, g(2, 2)).verdict, 'superseded')
    const moved = { ...g(2, 4), address: '10.0.0.9:7400' }
    const updated = applyChange(v, { add: [], remove: [], update: [moved] })
    assert.deepEqual(ids(updated), ids(v), 'an updated guest keeps its place')
    assert.deepEqual(updated.guests[1], { ...moved, since: 2 })
    const replaced = applyChange(v, { add: [g(2, 4)], remove: [{ id: g(2).id, reason: 'replaced' }], update: [] })
    assert.deepEqual(ids(replaced), [g(1).id, g(3).id, g(2).id], 'a replaced guest goes to the end')
  })

  it('the digest tells lists apart, also by start and address', () => {
    const v = applyChange(foundingView(g(1)), add(g(2)))
    assert.equal(viewDigest(v), viewDigest(structuredClone(v)))
    assert.notEqual(viewDigest(v), viewDigest(applyChange(foundingView(g(1)), add(g(2, 2)))))
    assert.notEqual(viewDigest(v), viewDigest({ ...v, epoch: 3 }))
  })

  it('any sequence of changes keeps ids unique and epochs rising (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 4 }), fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 3 })), {
          maxLength: 30,
        }),
        (steps) => {
          let v = foundingView(g(0))
          for (const [joins, removes] of steps) {
            const present = new Set(ids(v))
            const newcomers = [...new Set(joins)].map((n) => g(n)).filter((n) => !present.has(n.id))
            const epoch = v.epoch
            v = applyChange(v, { add: newcomers, remove: removes.map((r) => ({ id: g(r).id, reason: 'dead' as const })), update: [] })
            assert.equal(v.epoch, epoch + 1)
            assert.equal(new Set(ids(v)).size, v.guests.length)
          }
        },
      ),
    )
  })
})
