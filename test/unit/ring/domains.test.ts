import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Domains } from '../../../src/peer/protocol/index.ts'
import { chooseHolders, domainPath, randomRingId, worstLoss } from '../../../src/peer/ring/index.ts'

/** A seeded generator, so every run draws the same parties. */
function rng(seed: number): () => number {
  let x = seed
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31
    return x / 2 ** 31
  }
}

interface Party {
  ids: string[]
  domains: Map<string, Domains>
}

/** A random party: `peers` guests over `nodes` nodes, each node in one of `zones` zones. */
function party(random: () => number, peers: number, nodes: number, zones: number): Party {
  const ids = Array.from({ length: peers }, () => randomRingId((n) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)))))
  const zoneOf = Array.from({ length: nodes }, (_, n) => `zone-${n < zones ? n : Math.floor(random() * zones)}`)
  const domains = new Map<string, Domains>()
  ids.forEach((id, i) => {
    const node = i < nodes ? i : Math.floor(random() * nodes)
    domains.set(id, { node: `node-${node}`, zone: zoneOf[node] as string })
  })
  return { ids, domains }
}

const noLoad = { held: () => undefined }

function place(p: Party, name: string, k: number, m: number, candidates = p.ids): string[] {
  return chooseHolders({ candidates, name, count: k + m, tolerate: m, share: 0, load: noLoad, domains: (id) => p.domains.get(id) }).slice(0, k + m)
}

/**
 * Whether the rule can be met at all, worked out directly (not with the code
 * under test): k+m distinct nodes when there are that many (else at most m
 * per node), and at most m per zone. With nodes nested in zones, the most
 * fragments that fit is a sum over zones of min(m, sum over its nodes of
 * min(node cap, peers on the node)).
 */
function satisfiable(p: Party, n: number, m: number): boolean {
  const peersOn = new Map<string, number>()
  const zoneOf = new Map<string, string>()
  for (const d of p.domains.values()) {
    peersOn.set(d.node as string, (peersOn.get(d.node as string) ?? 0) + 1)
    zoneOf.set(d.node as string, d.zone as string)
  }
  const nodeCap = peersOn.size >= n ? 1 : m
  const perZone = new Map<string, number>()
  for (const [node, peers] of peersOn) perZone.set(zoneOf.get(node) as string, (perZone.get(zoneOf.get(node) as string) ?? 0) + Math.min(nodeCap, peers))
  return [...perZone.values()].reduce((a, z) => a + Math.min(m, z), 0) >= n
}

function spread(p: Party, holders: readonly string[]): { nodes: number; zones: number; distinctNodes: number } {
  const [, zones, nodes] = worstLoss(holders.map((id) => domainPath(id, p.domains.get(id))))
  return { nodes, zones, distinctNodes: new Set(holders.map((id) => p.domains.get(id)?.node)).size }
}

const CODINGS: [number, number][] = [
  [2, 1],
  [4, 2],
  [3, 2],
  [6, 3],
]

describe('placement by failure domain', () => {
  it('meets the rule in every random party where it can be met (1-12 nodes, 1-4 zones, 3-40 peers)', () => {
    const random = rng(7)
    let checked = 0
    let satisfiableParties = 0
    for (let trial = 0; trial < 400; trial++) {
      const nodes = 1 + Math.floor(random() * 12)
      const zones = 1 + Math.floor(random() * Math.min(4, nodes))
      const peers = Math.max(nodes, 3 + Math.floor(random() * 38))
      const p = party(random, peers, nodes, zones)
      const [k, m] = CODINGS[trial % CODINGS.length] as [number, number]
      if (peers < k + m) continue
      const can = satisfiable(p, k + m, m)
      if (can) satisfiableParties++
      for (let f = 0; f < 20; f++) {
        const holders = place(p, `t${trial}/f${f}`, k, m)
        checked++
        assert.equal(new Set(holders).size, k + m, 'distinct guests')
        if (!can) continue
        const s = spread(p, holders)
        const distinct = new Set([...p.domains.values()].map((d) => d.node)).size
        assert.ok(s.zones <= m, `trial ${trial}: a zone holds ${s.zones} > ${m} fragments`)
        if (distinct >= k + m) assert.equal(s.distinctNodes, k + m, `trial ${trial}: ${s.distinctNodes} nodes for ${k + m} fragments`)
        else assert.ok(s.nodes <= m, `trial ${trial}: a node holds ${s.nodes}`)
      }
    }
    assert.ok(checked > 4000 && satisfiableParties > 100, `${checked} placements, ${satisfiableParties} satisfiable parties`)
  })

  it('does as well as the party allows where the rule cannot be met', () => {
    const p = party(rng(3), 6, 2, 2)
    // 2+1 over two nodes: one of them must hold two fragments, never all three.
    for (let f = 0; f < 50; f++) assert.equal(spread(p, place(p, `f${f}`, 2, 1)).nodes, 2)
    // 4+2 over two zones of 3 peers each: 3 per zone, never 4.
    const q: Party = { ids: [], domains: new Map() }
    for (let i = 0; i < 8; i++) {
      const id = randomRingId()
      q.ids.push(id)
      q.domains.set(id, { node: `n${i}`, zone: i < 6 ? 'a' : 'b' })
    }
    for (let f = 0; f < 50; f++) assert.equal(spread(q, place(q, `f${f}`, 4, 2)).zones, 4)
  })

  it('prefers surviving a node before spreading zones evenly', () => {
    // One zone is one node with 4 peers; the other has 3 nodes. 3+1 can survive the loss of any node, not of any zone.
    const p: Party = { ids: [], domains: new Map() }
    for (let i = 0; i < 7; i++) {
      const id = randomRingId()
      p.ids.push(id)
      p.domains.set(id, i < 4 ? { node: 'big', zone: 'a' } : { node: `small-${i}`, zone: 'b' })
    }
    for (let f = 0; f < 50; f++) assert.equal(spread(p, place(p, `f${f}`, 3, 1)).nodes, 1)
  })

  it('is the plain rendezvous order when every guest is a domain of its own', () => {
    const ids = Array.from({ length: 9 }, () => randomRingId())
    for (let f = 0; f < 100; f++) {
      const plain = chooseHolders({ candidates: ids, name: `f${f}`, count: 3, tolerate: 1, share: 0, load: noLoad, domains: () => undefined })
      const p: Party = { ids, domains: new Map() }
      assert.deepEqual(plain.slice(0, 3), place(p, `f${f}`, 2, 1))
    }
  })

  it('is the same on every peer, whatever order the candidates come in', () => {
    const p = party(rng(11), 20, 6, 3)
    for (let f = 0; f < 100; f++) assert.deepEqual(place(p, `f${f}`, 4, 2), place(p, `f${f}`, 4, 2, [...p.ids].reverse()))
  })

  it('sends a rebuilt fragment to a domain the file lacks', () => {
    const p = party(rng(5), 12, 6, 3)
    for (let f = 0; f < 100; f++) {
      const holders = place(p, `f${f}`, 2, 1)
      const kept = holders.slice(1)
      const [target] = chooseHolders({
        candidates: p.ids.filter((id) => !holders.includes(id)),
        name: `f${f}`,
        count: 1,
        tolerate: 1,
        share: 0,
        load: noLoad,
        domains: (id) => p.domains.get(id),
        placed: kept,
      })
      const s = spread(p, [...kept, target as string])
      assert.equal(s.zones, 1, `file ${f}: the rebuilt fragment shares a zone`)
    }
  })

  for (const [label, k, m, nodes, zones, peers] of [
    ['2+1, 6 peers on 3 nodes', 2, 1, 3, 3, 6],
    ['4+2, 12 peers on 6 nodes in 3 zones', 4, 2, 6, 3, 12],
    ['2+1, 20 peers on 10 nodes in 4 zones', 2, 1, 10, 4, 20],
  ] as const) {
    it(`moves few fragments when a peer joins or leaves (${label})`, (t) => {
      const random = rng(peers * 13 + k)
      const p = party(random, peers, nodes, zones)
      const names = Array.from({ length: 2000 }, (_, i) => `dir/${i}`)
      const before = new Map(names.map((name) => [name, place(p, name, k, m)]))
      // A peer joins on an existing node; then that peer is placed around and one original guest leaves.
      const joiner = randomRingId((n) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256))))
      p.domains.set(joiner, { node: 'node-0', zone: p.domains.get(p.ids[0] as string)?.zone as string })
      const withJoiner = [...p.ids, joiner]
      const leaver = p.ids[1] as string
      const withoutLeaver = p.ids.filter((id) => id !== leaver)
      let joined = 0
      let left = 0
      for (const name of names) {
        const was = before.get(name) as string[]
        joined += place(p, name, k, m, withJoiner).filter((id) => !was.includes(id)).length
        // A leave moves at least the fragments the leaver held: count those beyond.
        const now = place(p, name, k, m, withoutLeaver)
        left += now.filter((id) => !was.includes(id)).length
      }
      const total = names.length * (k + m)
      const ideal = { join: 1 / (peers + 1), leave: 1 / peers }
      const fraction = { join: joined / total, leave: left / total }
      t.diagnostic(
        `moved on join ${(fraction.join * 100).toFixed(1)}% (ideal ${(ideal.join * 100).toFixed(1)}%), on leave ${(fraction.leave * 100).toFixed(1)}% (ideal ${(ideal.leave * 100).toFixed(1)}%)`,
      )
      assert.ok(fraction.join <= 2.5 * ideal.join, `join moved ${fraction.join}`)
      assert.ok(fraction.leave <= 2.5 * ideal.leave, `leave moved ${fraction.leave}`)
    })
  }
})
