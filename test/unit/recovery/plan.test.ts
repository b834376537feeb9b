import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { FileRecord, GuestId, HeldFragment } from '../../../src/peer/protocol/index.ts'
import { assess, type Census, censusOf, fragmentKey, ownership, type PlanInput, plan, readableHolders, readopted } from '../../../src/peer/recovery/index.ts'
import { aRecord } from '../../helpers/records.ts'

const A = '00000000000000aa'
const B = '00000000000000bb'
const C = '00000000000000cc'
const D = '00000000000000dd'
const E = '00000000000000ee'
const NOW = 1_000_000
const GRACE = 60_000

/** What a guest's inventory says of fragment `index` of `record` (old enough to be judged, unless `stored` says otherwise). */
function held(record: FileRecord, index: number, overrides: Partial<HeldFragment> = {}): HeldFragment {
  const ref = record.fragments.find((f) => f.index === index)
  return {
    name: record.name,
    version: record.version,
    index,
    size: record.size,
    bytes: 100,
    digest: ref?.digest ?? 'd'.repeat(64),
    coding: record.coding,
    hash: record.hash,
    created: record.created,
    stored: NOW - 10 * GRACE,
    ...overrides,
  }
}

/** A census where each recorded holder of each record answers holding its fragment, plus `extra` copies; `silent` guests did not answer. */
function censusFor(
  records: readonly FileRecord[],
  guests: readonly GuestId[],
  extra: { holder: GuestId; fragment: HeldFragment }[] = [],
  silent: GuestId[] = [],
): Census {
  const inventories = new Map<GuestId, HeldFragment[]>(guests.filter((g) => !silent.includes(g)).map((g) => [g, []]))
  for (const r of records) for (const f of r.fragments) inventories.get(f.holder)?.push(held(r, f.index))
  for (const { holder, fragment } of extra) inventories.get(holder)?.push(fragment)
  return censusOf(guests.map((holder) => ({ holder, fragments: inventories.get(holder) })))
}

function input(records: FileRecord[], overrides: Partial<PlanInput> & { guests?: GuestId[]; census?: Census | undefined } = {}): PlanInput {
  const guests = overrides.guests ?? [A, B, C, D]
  return {
    records,
    presence: { guests: new Set(guests), census: overrides.census, now: NOW, rebuildDue: () => NOW },
    isPrimary: () => true,
    repairFrom: new Map(),
    orphanGraceMs: GRACE,
    rebalanceMoves: 0,
    ...overrides,
  }
}

describe('recovery plan', () => {
  it('plans nothing for a whole file', () => {
    const r = aRecord()
    const p = plan(input([r], { census: censusFor([r], [A, B, C, D]) }))
    assert.deepEqual([p.adoptions, p.restorations, p.drops, p.repairs, p.moves], [[], [], [], [], []])
    assert.deepEqual(p.health, { files: 1, degraded: new Set(), lost: 0, atRisk: [new Map(), new Map(), new Map()] })
  })

  describe('failure domains', () => {
    // A and B share node n1 (zone z1); C is on n2 (z2); D on n3 (z3), E on n4 (z3).
    const where = new Map([
      [A, { node: 'n1', zone: 'z1' }],
      [B, { node: 'n1', zone: 'z1' }],
      [C, { node: 'n2', zone: 'z2' }],
      [D, { node: 'n3', zone: 'z3' }],
      [E, { node: 'n4', zone: 'z3' }],
    ])
    const domains = (id: GuestId) => where.get(id)

    it('counts a file two of whose three fragments share a node as at risk of that node and its zone', () => {
      const r = aRecord()
      const p = plan(input([r], { census: censusFor([r], [A, B, C, D]), domains }))
      const [, zones, nodes] = p.health.atRisk
      assert.deepEqual([...nodes], [['z1\u0000z1\u0000n1', 1]])
      assert.deepEqual([...zones], [['z1\u0000z1', 1]])
    })

    it('moves one fragment of such a file to a node and zone it lacks, copy before drop, within the move budget', () => {
      const r = aRecord()
      const p = plan(input([r], { census: censusFor([r], [A, B, C, D]), domains, rebalanceMoves: 4 }))
      assert.equal(p.moves.length, 1)
      const [move] = p.moves
      assert.equal(move?.reason, 'spread')
      assert.ok(move?.from === A || move?.from === B)
      assert.equal(move?.to, D)
      assert.equal(plan(input([r], { census: censusFor([r], [A, B, C, D]), domains, rebalanceMoves: 0 })).moves.length, 0)
    })

    it('leaves a file alone when its spread is the best the party allows', () => {
      const r = aRecord({ fragments: aRecord().fragments.map((f, i) => ({ ...f, holder: [A, C, D][i] as GuestId })) })
      const p = plan(input([r], { census: censusFor([r], [A, B, C, D, E]), domains, rebalanceMoves: 4, guests: [A, B, C, D, E] }))
      assert.deepEqual(p.moves, [])
      assert.deepEqual(
        p.health.atRisk.map((m) => m.size),
        [0, 0, 0],
      )
    })

    it('never evens out bytes by moving a fragment beside another of its file', () => {
      // C holds far more than B; the only fragment C could give B would put it on node n1 beside A.
      const r = aRecord({ fragments: aRecord().fragments.map((f, i) => ({ ...f, holder: [A, C, D][i] as GuestId })) })
      const census = censusFor([r], [A, B, C, D])
      census.bytes.set(C, 10_000)
      census.bytes.set(B, 0)
      const p = plan(input([r], { census, domains, rebalanceMoves: 4 }))
      assert.deepEqual(p.moves, [])
      // Blind to domains, the same party would move it.
      assert.deepEqual(
        plan(input([r], { census, rebalanceMoves: 4 })).moves.map((m) => [m.from, m.to, m.reason]),
        [[C, B, 'rebalance']],
      )
    })
  })

  it('repairs a fragment whose holder left, once its rebuild delay is over, and not before', () => {
    const r = aRecord()
    const gone = input([r], { guests: [A, B, D] })
    const due = plan(gone)
    assert.deepEqual(
      due.repairs.map((x) => x.assessment.missing),
      [[2]],
    )
    assert.equal(due.health.degraded.size, 1)
    const waiting = plan({ ...gone, presence: { ...gone.presence, rebuildDue: () => NOW + 30_000 } })
    assert.deepEqual(waiting.repairs, [])
    assert.equal(waiting.health.degraded.size, 1, 'still degraded while it is away')
    assert.equal(waiting.wakeAt, NOW + 30_000 + 50, 'a pass is due when the delay ends')
  })

  it('repairs a fragment its live holder answered without (scrubbed, deleted by hand)', () => {
    const r = aRecord()
    const census = censusFor([{ ...r, fragments: r.fragments.filter((f) => f.index !== 1) }], [A, B, C, D])
    const p = plan(input([r], { census }))
    assert.deepEqual(
      p.repairs.map((x) => x.assessment.missing),
      [[1]],
    )
  })

  it('neither repairs nor calls lost a fragment on a guest that did not answer', () => {
    const r = aRecord()
    const p = plan(input([r], { census: censusFor([r], [A, B, C, D], [], [C]) }))
    assert.deepEqual(p.repairs, [])
    assert.equal(p.health.degraded.size, 1)
    assert.equal(p.health.lost, 0)
  })

  it('counts a file below k as lost and plans no repair it cannot do', () => {
    const r = aRecord()
    const p = plan(input([r], { guests: [A, D] }))
    assert.equal(p.health.lost, 1)
    assert.deepEqual(p.repairs, [])
  })

  it('repairs the files with the fewest surviving fragments first', () => {
    const oneLost = aRecord({
      name: 'one',
      coding: { k: 2, m: 2, stripeBytes: 1024 },
      fragments: [...aRecord().fragments, { index: 3, holder: D, digest: 'e'.repeat(64) }],
    })
    const twoLost = aRecord({
      name: 'two',
      coding: { k: 2, m: 2, stripeBytes: 1024 },
      fragments: [...aRecord().fragments, { index: 3, holder: E, digest: 'e'.repeat(64) }],
    })
    const p = plan(input([oneLost, twoLost], { guests: [A, B, D] }))
    assert.deepEqual(
      p.repairs.map((x) => x.record.name),
      ['two', 'one'],
    )
    assert.equal(p.deferred, 0)
    // A walk in chunks repairs first what one more loss would lose, across the arc; the rest is counted, and waits.
    const atRisk = plan(input([oneLost, twoLost], { guests: [A, B, D], atRiskOnly: true, rebalanceMoves: 3 }))
    assert.deepEqual(
      atRisk.repairs.map((x) => x.record.name),
      ['two'],
    )
    assert.deepEqual([atRisk.deferred, atRisk.moves, atRisk.health.degraded.size], [1, [], 2])
  })

  it('leaves a file it took over from a live guest to that guest for a while', () => {
    const r = aRecord()
    const p = plan(input([r], { guests: [A, B, D], repairFrom: new Map([['a', NOW + 3_000]]) }))
    assert.deepEqual(p.repairs, [])
    assert.equal(p.wakeAt, NOW + 3_000)
  })

  it('re-adopts a fragment found on another live guest instead of rebuilding it, and drops nothing of that file this pass', () => {
    const r = aRecord()
    const census = censusFor([r], [A, B, D], [{ holder: D, fragment: held(r, 2) }])
    const p = plan(input([r], { guests: [A, B, D], census }))
    assert.deepEqual(p.adoptions, [{ record: r, found: [{ index: 2, holder: D, digest: r.fragments[2]?.digest }] }])
    assert.deepEqual(p.repairs, [], 'planned on the re-adopted record: nothing to rebuild')
    assert.equal(p.health.degraded.size, 0)
    assert.deepEqual(p.drops, [])
    assert.equal(readopted(r, p.adoptions[0]?.found ?? []).revision, r.revision + 1)
  })

  it('does not re-adopt a copy whose digest differs from the record', () => {
    const r = aRecord()
    const census = censusFor([r], [A, B, D], [{ holder: D, fragment: held(r, 2, { digest: '9'.repeat(64) }) }])
    assert.deepEqual(plan(input([r], { guests: [A, B, D], census })).adoptions, [])
  })

  it('drops superseded versions and a deleted file’s fragments, but not a young unreferenced fragment', () => {
    const r = aRecord({ version: '0000000000005-00000000' })
    const old = held(aRecord(), 0)
    const young = held(aRecord({ version: '0000000000009-00000000' }), 1, { stored: NOW - 1 })
    const census = censusFor(
      [r],
      [A, B, C, D],
      [
        { holder: D, fragment: old },
        { holder: D, fragment: young },
      ],
    )
    const p = plan(input([r], { census }))
    assert.deepEqual(p.drops, [{ holder: D, fragment: old }])
    const tomb = aRecord({ version: '0000000000005-00000000', deleted: true, fragments: [] })
    const afterDelete = plan(input([tomb], { census: censusFor([r], [A, B, C, D]) }))
    assert.equal(afterDelete.drops.length, 3)
    assert.equal(afterDelete.health.files, 0)
  })

  it('drops an extra copy only once the record is whole', () => {
    const r = aRecord()
    const extra = { holder: D, fragment: held(r, 0) }
    assert.deepEqual(plan(input([r], { census: censusFor([r], [A, B, C, D], [extra]) })).drops, [extra])
    const notWhole = plan(input([r], { census: censusFor([r], [A, B, C, D], [extra], [C]) }))
    assert.deepEqual(notWhole.drops, [])
  })

  it('restores a lost record from k fragments nobody tracks, and never drops them', () => {
    const lost = aRecord({ name: 'lost' })
    const census = censusFor([lost], [A, B, C, D])
    const p = plan(input([], { census }))
    assert.equal(p.restorations.length, 1)
    assert.equal(p.restorations[0]?.length, 3)
    assert.deepEqual(p.drops, [])
  })

  it('only tidies names this peer is primary of', () => {
    const r = aRecord({ version: '0000000000005-00000000' })
    const old = { holder: D, fragment: held(aRecord(), 0) }
    const p = plan(input([r], { census: censusFor([r], [A, B, C, D], [old]), isPrimary: () => false }))
    assert.deepEqual(p.drops, [])
  })

  it('moves fragments from the fullest guest to the emptiest, only when nothing needs repair', () => {
    const records = ['x', 'y', 'z'].map((name) => aRecord({ name }))
    const census = censusFor(records, [A, B, C, D])
    const p = plan(input(records, { census, rebalanceMoves: 5 }))
    assert.ok(p.moves.length > 0)
    for (const m of p.moves) {
      assert.equal(m.to, D)
      assert.ok(!m.record.fragments.some((f) => f.holder === D), 'never beside another fragment of the same file')
    }
    assert.ok(new Set(p.moves.map((m) => m.record.name)).size === p.moves.length, 'a file moves once a pass')
    const hurt = aRecord({ name: 'hurt' })
    const withHurt = censusFor(
      records,
      [A, B, C, D],
      [0, 1].map((i) => ({ holder: hurt.fragments[i]?.holder as string, fragment: held(hurt, i) })),
    )
    const degraded = plan(input([...records, hurt], { census: withHurt, rebalanceMoves: 5 }))
    assert.ok(degraded.repairs.length > 0)
    assert.deepEqual(degraded.moves, [])
  })

  it('ownership: a file taken over from a live guest waits; one taken from a dead guest, or known already, does not', () => {
    const change = { self: A, guests: [A, B], now: NOW, settleMs: 3_000 }
    const fromLive = ownership(new Map(), ['f'], { ...change, previousPrimary: () => B })
    assert.equal(fromLive.get('f'), NOW + 3_000)
    const fromDead = ownership(new Map(), ['f'], { ...change, previousPrimary: () => C })
    assert.equal(fromDead.has('f'), false, 'no entry: it may be repaired now')
    const kept = ownership(
      new Map([
        ['f', NOW + 5],
        ['settled', NOW - 5],
        ['gone', NOW + 1],
      ]),
      ['f', 'settled'],
      { ...change, previousPrimary: () => B },
    )
    assert.deepEqual([...kept], [['f', NOW + 5]], 'a name still waiting keeps its time; one whose wait is over, or no longer primary here, has no entry')
  })

  it('health counts a fragment caught mid-move: on its recorded holder, or the very same copy on another live guest', () => {
    const r = aRecord()
    const moved = { ...r, fragments: r.fragments.filter((f) => f.index !== 2) }
    const live = new Set([A, B, C, D])
    // The record still says C; the census saw the copy already on D and gone from C.
    assert.equal(readableHolders(r, live, censusFor([moved], [A, B, C, D], [{ holder: D, fragment: held(r, 2) }])).length, 3)
    assert.equal(readableHolders(r, live, censusFor([moved], [A, B, C, D], [{ holder: D, fragment: held(r, 2, { digest: '9'.repeat(64) }) }])).length, 2)
    assert.equal(readableHolders(r, live, censusFor([moved], [A, B, C, D])).length, 2)
  })

  it('property: no plan ever drops a copy a record counts on, or the last copy of a fragment', () => {
    const guests = [A, B, C, D, E]
    const arb = fc.record({
      records: fc.array(
        fc.record({
          holders: fc.shuffledSubarray(guests, { minLength: 3, maxLength: 3 }),
          version: fc.integer({ min: 1, max: 3 }),
          deleted: fc.boolean(),
        }),
        { minLength: 1, maxLength: 4 },
      ),
      strays: fc.array(
        fc.record({ file: fc.nat(3), index: fc.nat(2), holder: fc.constantFrom(...guests), version: fc.integer({ min: 0, max: 4 }), young: fc.boolean() }),
        { maxLength: 8 },
      ),
      live: fc.subarray(guests, { minLength: 1 }),
      silent: fc.subarray(guests),
    })
    fc.assert(
      fc.property(arb, ({ records: specs, strays, live, silent }) => {
        const records = specs.map((s, i) =>
          aRecord({
            name: `f${i}`,
            version: `000000000000${s.version}-00000000`,
            deleted: s.deleted,
            fragments: s.deleted ? [] : s.holders.map((holder, index) => ({ index, holder, digest: `${index}`.repeat(64) })),
          }),
        )
        const extra = strays.map((s) => {
          const base = records[s.file % records.length] as FileRecord
          const version = `000000000000${s.version}-00000000`
          return { holder: s.holder, fragment: held(base, s.index, { version, digest: `${s.index}`.repeat(64), stored: s.young ? NOW : NOW - 10 * GRACE }) }
        })
        const census = censusFor(records, live, extra, silent)
        const p = plan(input(records, { guests: live, census, rebalanceMoves: 3 }))
        const dropped = new Set(p.drops.map((d) => `${fragmentKey(d.fragment.name, d.fragment.version, d.fragment.index)}@${d.holder}`))
        for (const r of records) {
          if (r.deleted) continue
          for (const ref of assess(r, { guests: new Set(live), census }).ok) {
            assert.ok(!dropped.has(`${fragmentKey(r.name, r.version, ref.index)}@${ref.holder}`), 'a recorded, readable copy is never dropped')
          }
        }
        for (const [key, copies] of census.where) {
          const left = copies.filter((c) => !dropped.has(`${key}@${c.holder}`))
          const record = records.find((r) => r.name === copies[0]?.fragment.name)
          const current = record && !record.deleted && record.version === copies[0]?.fragment.version
          if (current) assert.ok(left.length > 0, `the last copy of ${key} survives`)
        }
      }),
      { numRuns: 300 },
    )
  })
})
