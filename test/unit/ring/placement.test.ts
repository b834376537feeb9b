import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { chooseHolders, holderRanking, randomRingId, trackersOf } from '../../../src/peer/ring/index.ts'

/** A seeded generator, so the file sizes are the same on every run. */
function rng(seed: number): () => number {
  let x = seed
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31
    return x / 2 ** 31
  }
}

describe('placement', () => {
  for (const peers of [5, 8, 12]) {
    it(`spreads 1,000 files of mixed sizes (1 KiB to 64 MiB) within ±20% per peer in bytes and fragments (${peers} peers, 2+1)`, () => {
      const random = rng(peers)
      const idRandom = rng(peers * 31)
      const ids = Array.from({ length: peers }, () => randomRingId((n) => Buffer.from(Array.from({ length: n }, () => Math.floor(idRandom() * 256)))))
      const fragments = new Map(ids.map((id) => [id, 0]))
      const bytes = new Map(ids.map((id) => [id, 0]))
      for (let f = 0; f < 1000; f++) {
        // Mixed sizes: mostly small, some medium, a few large (1 KiB .. 64 MiB, log-uniform).
        const size = Math.round(1024 * 2 ** (random() * 16))
        const load = { held: (id: string) => bytes.get(id) }
        for (const id of chooseHolders({
          candidates: ids,
          name: `dir-${f % 17}/file-${f}.bin`,
          count: 3,
          tolerate: 1,
          share: size / 2,
          load,
          domains: () => undefined,
        }).slice(0, 3)) {
          fragments.set(id, (fragments.get(id) ?? 0) + 1)
          bytes.set(id, (bytes.get(id) ?? 0) + size / 2)
        }
      }
      for (const [what, m] of [
        ['fragments', fragments],
        ['bytes', bytes],
      ] as const) {
        const values = [...m.values()]
        const mean = values.reduce((a, b) => a + b, 0) / values.length
        for (const v of values) assert.ok(Math.abs(v - mean) <= 0.2 * mean, `${what}: ${v} vs mean ${mean.toFixed(0)}`)
      }
    })
  }

  it('picks distinct holders and the same trackers on every peer', () => {
    const ids = Array.from({ length: 6 }, () => randomRingId())
    const ranking = holderRanking(ids, 'x')
    assert.equal(new Set(ranking).size, 6)
    assert.deepEqual(holderRanking([...ids].reverse(), 'x'), ranking)
    assert.deepEqual(trackersOf(ids, 'x', 3), trackersOf([...ids].reverse(), 'x', 3))
    assert.equal(trackersOf(ids.slice(0, 2), 'x', 3).length, 2)
  })
})

describe('placement without load information', () => {
  it('plain rendezvous balances fragment counts but not heavy-tailed bytes, which is why placement bounds loads', () => {
    const ids = Array.from({ length: 12 }, () => randomRingId())
    const counts = new Map(ids.map((id) => [id, 0]))
    for (let f = 0; f < 1000; f++) for (const id of holderRanking(ids, `file-${f}`).slice(0, 3)) counts.set(id, (counts.get(id) ?? 0) + 1)
    for (const c of counts.values()) assert.ok(Math.abs(c - 250) <= 50, `fragments ${c}`)
  })
})
