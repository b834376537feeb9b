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

  it('puts a fragment on the coding peer while it holds no more than about the average, and no further', () => {
    const idRandom = rng(7)
    const ids = Array.from({ length: 5 }, () => randomRingId((n) => Buffer.from(Array.from({ length: n }, () => Math.floor(idRandom() * 256)))))
    const place = (coordinatorOf: (f: number) => string): { bytes: Map<string, number>; onCoordinator: number } => {
      const bytes = new Map(ids.map((id) => [id, 0]))
      let onCoordinator = 0
      for (let f = 0; f < 3000; f++) {
        const prefer = coordinatorOf(f)
        const load = { held: (id: string) => bytes.get(id) }
        const chosen = chooseHolders({ candidates: ids, name: `f/${f}`, count: 3, tolerate: 1, share: 2048, load, domains: () => undefined, prefer }).slice(
          0,
          3,
        )
        if (chosen.includes(prefer)) onCoordinator++
        for (const id of chosen) bytes.set(id, (bytes.get(id) ?? 0) + 2048)
      }
      return { bytes, onCoordinator }
    }
    // Clients spread over every peer: nearly every file keeps a fragment where it was coded.
    const spread = place((f) => ids[f % ids.length] as string)
    assert.ok(spread.onCoordinator >= 2700, `${spread.onCoordinator} of 3000 files hold a fragment on their coding peer`)
    // Every file through one peer: it fills to a little above the average, inside the band recovery leaves alone.
    const one = place(() => ids[0] as string)
    for (const { bytes } of [spread, one]) {
      const mean = [...bytes.values()].reduce((a, b) => a + b, 0) / bytes.size
      for (const [id, v] of bytes) assert.ok(v <= mean * 1.1 && v >= mean * 0.9, `${id}: ${v} vs mean ${mean.toFixed(0)}`)
    }
    assert.ok((one.bytes.get(ids[0] as string) ?? 0) > 3000 * 2048 * (3 / 5), 'the coding peer took its share and more')
  })

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
