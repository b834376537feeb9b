import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { freshRingId, rendezvousRank, ringPosition, successors } from '../../../src/peer/ring/index.ts'

describe('the ring', () => {
  it('positions are 16 hex digits and stable', () => {
    assert.match(ringPosition('a file'), /^[0-9a-f]{16}$/)
    assert.equal(ringPosition('a file'), ringPosition('a file'))
    assert.notEqual(ringPosition('a file'), ringPosition('a file2'))
  })

  it('positions and rankings are those every data dir was written with: SHA-256 of the UTF-8 name, first 64 bits', () => {
    assert.equal(ringPosition('a file'), '7365d029861e32c5')
    assert.equal(ringPosition('fête/über 🎉'), '268d38cc7e341b0b')
    const ids = ['0000000000000001', '7fffffffffffffff', '8000000000000000', 'ffffffffffffffff', '0123456789abcdef']
    assert.deepEqual(rendezvousRank(ids, 'file-1'), ['7fffffffffffffff', '8000000000000000', 'ffffffffffffffff', '0000000000000001', '0123456789abcdef'])
    assert.deepEqual(rendezvousRank(ids, 's/9/été.bin'), ['0000000000000001', '7fffffffffffffff', 'ffffffffffffffff', '0123456789abcdef', '8000000000000000'])
  })

  it('successors walk clockwise and wrap', () => {
    const ids = ['1000000000000000', '5000000000000000', '9000000000000000']
    assert.deepEqual(successors(ids, '0000000000000000', 2), ['1000000000000000', '5000000000000000'])
    assert.deepEqual(successors(ids, '5000000000000000', 2), ['5000000000000000', '9000000000000000'])
    assert.deepEqual(successors(ids, 'f000000000000000', 2), ['1000000000000000', '5000000000000000'])
    assert.deepEqual(successors(ids, '0', 9), ids)
    assert.deepEqual(successors([], '0', 2), [])
  })

  it('fresh ids avoid taken ones', () => {
    let calls = 0
    const rnd = (n: number): Buffer => Buffer.alloc(n, calls++ < 2 ? 0 : 1)
    assert.equal(freshRingId(['0000000000000000'], rnd), '0101010101010101')
  })

  it('rendezvous ranking is shared, spreads keys evenly, and moves little when a guest goes', () => {
    const ids = Array.from({ length: 10 }, () => freshRingId([]))
    const firsts = new Map<string, number>()
    const keys = Array.from({ length: 5000 }, (_, i) => `file-${i}`)
    for (const k of keys) {
      const top = rendezvousRank(ids, k)[0] as string
      firsts.set(top, (firsts.get(top) ?? 0) + 1)
    }
    for (const n of firsts.values()) assert.ok(Math.abs(n - 500) < 500 * 0.2, `each guest tops ~10% of keys (${n})`)
    const gone = ids[3] as string
    const rest = ids.filter((x) => x !== gone)
    let moved = 0
    for (const k of keys) if (rendezvousRank(ids, k)[0] !== gone && rendezvousRank(rest, k)[0] !== rendezvousRank(ids, k)[0]) moved++
    assert.equal(moved, 0, 'only keys whose top choice left move')
  })
})
