import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { applyChange, checkNewcomer, coordinatorOf, foundingView, mayCoordinate, type Newcomer } from '../../../src/peer/membership/index.ts'

const g = (n: number): Newcomer => ({ id: n.toString(16).padStart(16, '0'), address: `127.0.0.1:${7400 + n}`, apiPort: 7480 + n })

describe('guest list changes', () => {
  it('appends newcomers in order, removes the removed, bumps the epoch', () => {
    let v = foundingView(g(1))
    v = applyChange(v, [g(2), g(3)], [])
    assert.equal(v.epoch, 2)
    assert.deepEqual(
      v.guests.map((x) => x.id),
      [g(1).id, g(2).id, g(3).id],
    )
    v = applyChange(v, [g(4)], [g(2).id])
    assert.deepEqual(
      v.guests.map((x) => x.id),
      [g(1).id, g(3).id, g(4).id],
    )
    assert.equal(v.guests.at(-1)?.since, 3)
  })

  it('the first guest not being removed coordinates', () => {
    const v = applyChange(foundingView(g(1)), [g(2), g(3)], [])
    assert.equal(coordinatorOf(v)?.id, g(1).id)
    assert.equal(coordinatorOf(v, new Set([g(1).id]))?.id, g(2).id)
    assert.ok(mayCoordinate(v, g(1).id, []))
    assert.ok(!mayCoordinate(v, g(2).id, []), 'the second may not coordinate while the first stays')
    assert.ok(mayCoordinate(v, g(2).id, [g(1).id]), "the second may coordinate the first's removal")
    assert.ok(!mayCoordinate(v, g(3).id, [g(1).id]))
    assert.ok(!mayCoordinate(v, g(9).id, [g(1).id, g(2).id, g(3).id]), 'a stranger never coordinates')
  })

  it('an id held at another address is taken; the same address replaces an earlier life', () => {
    const v = applyChange(foundingView(g(1)), [g(2)], [])
    assert.deepEqual(checkNewcomer(v, { ...g(2), address: '127.0.0.1:9999' }), { ok: false, code: 'ID_TAKEN' })
    assert.deepEqual(checkNewcomer(v, { ...g(7), address: g(2).address }), { ok: true, replaces: [g(2).id] })
    assert.deepEqual(checkNewcomer(v, g(3)), { ok: true, replaces: [] })
    assert.deepEqual(checkNewcomer(v, g(3), [{ ...g(3), address: 'x:1' }]), { ok: false, code: 'ID_TAKEN' })
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
            const ids = new Set(v.guests.map((x) => x.id))
            const newcomers = [...new Set(joins)].map(g).filter((n) => !ids.has(n.id))
            const epoch = v.epoch
            v = applyChange(
              v,
              newcomers,
              removes.map((r) => g(r).id),
            )
            assert.equal(v.epoch, epoch + 1)
            assert.equal(new Set(v.guests.map((x) => x.id)).size, v.guests.length)
          }
        },
      ),
    )
  })
})
