import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { fragmentBytes } from '../../../src/peer/codec/index.ts'
import type { FileRecord, GuestId, HeldFragment } from '../../../src/peer/protocol/index.ts'
import { type Census, type Copy, censusOf, copiesOf, expect, fragmentKey, takeArcCensus, takePartCensus } from '../../../src/peer/recovery/index.ts'
import {
  type Arc,
  ArcParts,
  BucketDigests,
  bucketOf,
  differingParts,
  fingerprint,
  inArc,
  type Member,
  membersIn,
  type PartDigests,
  primaryArc,
  ringPosition,
} from '../../../src/peer/ring/index.ts'
import type { FragmentClient } from '../../../src/peer/transfer/index.ts'
import { aRecord } from '../../helpers/records.ts'

const GUESTS: GuestId[] = ['2000000000000000', '6000000000000000', 'a000000000000000', 'e000000000000000']

/** Guests as a FragmentClient sees them: each holder's fragments, answered the way FragmentStore answers. */
class Holders {
  readonly held = new Map<GuestId, Map<string, HeldFragment>>(GUESTS.map((g) => [g, new Map()]))
  readonly silent = new Set<GuestId>()

  add(holder: GuestId, fragment: HeldFragment): void {
    this.held.get(holder)?.set(`${fragment.name}/${fragment.version}/${fragment.index}`, fragment)
  }

  #of(holder: GuestId): { digests: BucketDigests; held: Map<string, HeldFragment>; members: (bucket: number) => Member[] } {
    if (this.silent.has(holder)) throw new Error('no answer')
    const held = this.held.get(holder) as Map<string, HeldFragment>
    const digests = new BucketDigests()
    const all = [...held].map(([key, f]) => ({ key, position: ringPosition(f.name), print: fingerprint(f.name, f.version, f.index, f.digest) }))
    for (const m of all) digests.add(bucketOf(m.position), m.print, (held.get(m.key) as HeldFragment).bytes)
    return { digests, held, members: (bucket) => all.filter((m) => bucketOf(m.position) === bucket) }
  }

  client(): FragmentClient {
    return {
      digests: async (holder: GuestId, arc: Arc, parts: number) => {
        const { digests, held, members } = this.#of(holder)
        return {
          parts: digests.parts(new ArcParts(arc, parts), members).encode(),
          bytes: [...held.values()].reduce((n, f) => n + f.bytes, 0),
          fragments: held.size,
        }
      },
      inventoryIn: async (holder: GuestId, arc: Arc, parts: number, select: readonly number[]) => {
        const { held, members } = this.#of(holder)
        return [...membersIn(new ArcParts(arc, parts), new Set(select), members)].map((m) => held.get(m.key) as HeldFragment)
      },
    } as unknown as FragmentClient
  }
}

const copyOf = (record: FileRecord, index: number, digest?: string): HeldFragment => ({
  name: record.name,
  version: record.version,
  index,
  size: record.size,
  bytes: fragmentBytes(record.size, record.coding),
  digest: digest ?? (record.fragments.find((f) => f.index === index)?.digest as string),
  coding: record.coding,
  hash: record.hash,
  created: record.created,
  stored: record.created,
})

/** What the planner reads of a census, for names in `arc`: which holder has which digest of each fragment (listed, or of `records` and vouched for). */
function seen(census: Census, arc: Arc, records: readonly FileRecord[] = []): string[] {
  const out = new Set<string>()
  const add = (key: string, copies: readonly Copy[]): void => {
    for (const c of copies) if (inArc(ringPosition(c.fragment.name), arc)) out.add(`${key} @${c.holder} ${c.fragment.digest} ${c.fragment.bytes}`)
  }
  for (const [key, copies] of census.where) add(key, copies)
  for (const r of records) for (const ref of r.fragments) add(fragmentKey(r.name, r.version, ref.index), copiesOf(census, r, ref.index))
  return [...out].sort()
}

const change = fc.record({ kind: fc.constantFrom('lost', 'orphan', 'old-version', 'other-digest', 'silent', 'deleted'), file: fc.nat(), holder: fc.nat() })

describe('census by digest', () => {
  it('sees in an arc what a census of whole inventories sees, listing only where a holder differs from the records', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 40 }), fc.array(change, { maxLength: 6 }), fc.constantFrom(...GUESTS), (n, changes, self) => {
        const holders = new Holders()
        const records = Array.from({ length: n }, (_, i) => {
          const at = i % GUESTS.length
          const fragments = [0, 1, 2].map((index) => ({
            index,
            holder: GUESTS[(at + index) % GUESTS.length] as GuestId,
            digest: `${index}${i}`.padEnd(64, '0'),
          }))
          return aRecord({ name: `file-${i}`, fragments })
        })
        for (const r of records) for (const f of r.fragments) holders.add(f.holder, copyOf(r, f.index))
        for (const c of changes) {
          const record = records[c.file % Math.max(1, n)]
          const holder = GUESTS[c.holder % GUESTS.length] as GuestId
          if (c.kind === 'silent') holders.silent.add(holder)
          if (!record) continue
          const ref = record.fragments[c.holder % 3] as FileRecord['fragments'][number]
          if (c.kind === 'lost') holders.held.get(ref.holder)?.delete(`${record.name}/${record.version}/${ref.index}`)
          if (c.kind === 'orphan') holders.add(holder, copyOf({ ...record, name: `orphan-${c.file}` }, 0, 'e'.repeat(64)))
          if (c.kind === 'old-version') holders.add(holder, copyOf({ ...record, version: '0000000000000-00000000' }, 1, 'f'.repeat(64)))
          if (c.kind === 'other-digest') holders.add(ref.holder, copyOf(record, ref.index, '9'.repeat(64)))
          if (c.kind === 'deleted') records[c.file % n] = { ...record, deleted: true }
        }
        const arc = primaryArc(GUESTS, self)
        const mine = records.filter((r) => inArc(ringPosition(r.name), arc))
        const full = censusOf(
          GUESTS.map((holder) => ({ holder, fragments: holders.silent.has(holder) ? undefined : [...(holders.held.get(holder)?.values() ?? [])] })),
        )
        return takeArcCensus(holders.client(), arc, mine, GUESTS).then((census) => {
          assert.deepEqual(seen(census, arc, mine), seen(full, arc))
          assert.deepEqual([...census.answered].sort(), [...full.answered].sort())
          assert.deepEqual([...census.silent].sort(), [...full.silent].sort())
          assert.deepEqual(census.bytes, full.bytes)
          if (changes.length === 0) assert.deepEqual({ differing: census.exchanged?.differing, listed: census.exchanged?.listed }, { differing: 0, listed: 0 })
        })
      }),
      { numRuns: 60 },
    )
  })

  it('lists nothing when every holder agrees with the records, however many files there are', async () => {
    const holders = new Holders()
    const records = Array.from({ length: 2000 }, (_, i) =>
      aRecord({ name: `f/${i}`, fragments: [0, 1, 2].map((index) => ({ index, holder: GUESTS[index] as GuestId, digest: `${i}`.padEnd(64, '0') })) }),
    )
    for (const r of records) for (const f of r.fragments) holders.add(f.holder, copyOf(r, f.index))
    const census = await takeArcCensus(holders.client(), { from: GUESTS[0] as GuestId, to: GUESTS[0] as GuestId }, records, GUESTS)
    assert.deepEqual(census.exchanged, { parts: 256 * GUESTS.length, differing: 0, listed: 0 })
    assert.equal(census.where.size, 0, 'nothing listed')
    for (const r of records)
      for (const ref of r.fragments) assert.deepEqual(copiesOf(census, r, ref.index), [{ holder: ref.holder, fragment: copyOf(r, ref.index) }])
  })

  it('kept up to date from the records that changed, reads and lists only the parts that differ, and sees there what a full census sees (property)', async () => {
    const step = fc.record({ kind: fc.constantFrom('put', 'replace', 'delete', 'lost', 'orphan'), file: fc.nat(), holder: fc.nat() })
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 40 }), fc.array(step, { maxLength: 8 }), fc.constantFrom(...GUESTS), async (n, steps, self) => {
        const holders = new Holders()
        const recordOf = (i: number, version = '0000000000001-00000000'): FileRecord => {
          const at = i % GUESTS.length
          const fragments = [0, 1, 2].map((index) => ({
            index,
            holder: GUESTS[(at + index) % GUESTS.length] as GuestId,
            digest: `${index}${i}${version}`.slice(0, 64).padEnd(64, '0'),
          }))
          return aRecord({ name: `file-${i}`, version, fragments })
        }
        const records = new Map<string, FileRecord>()
        const store = (r: FileRecord): void => {
          records.set(r.name, r)
          for (const f of r.fragments) holders.add(f.holder, copyOf(r, f.index))
        }
        for (let i = 0; i < n; i++) store(recordOf(i))
        const arc = primaryArc(GUESTS, self)
        const parts = new ArcParts(arc)
        const inMyArc = (): FileRecord[] => [...records.values()].filter((r) => inArc(ringPosition(r.name), arc))
        const baseline = (await takeArcCensus(holders.client(), arc, inMyArc(), GUESTS)).expected as ReadonlyMap<GuestId, PartDigests>
        // What a tracker's change log would hold: each changed name's record before its first change.
        const before = new Map<string, FileRecord | undefined>()
        for (const s of steps) {
          const i = s.file % Math.max(1, n + 3)
          const name = `file-${i}`
          const current = records.get(name)
          if (s.kind === 'put' || s.kind === 'replace' || s.kind === 'delete') if (!before.has(name)) before.set(name, current)
          if (s.kind === 'put' && !current) store(recordOf(i))
          if (s.kind === 'replace') store(recordOf(i, `000000000000${2 + (s.holder % 7)}-00000000`))
          if (s.kind === 'delete' && current) records.set(name, { ...current, deleted: true })
          const ref = current?.fragments[s.holder % 3]
          if (s.kind === 'lost' && current && ref) holders.held.get(ref.holder)?.delete(`${name}/${current.version}/${ref.index}`)
          if (s.kind === 'orphan') holders.add(GUESTS[s.holder % GUESTS.length] as GuestId, copyOf(recordOf(1000 + i), 0))
        }
        const expected = new Map([...baseline].map(([g, d]) => [g, d.copy()]))
        const changed: FileRecord[] = []
        for (const [name, was] of before) {
          if (parts.partOf(ringPosition(name)) === undefined) continue
          expect(expected, parts, was, -1)
          expect(expected, parts, records.get(name), 1)
          const now = records.get(name)
          if (now) changed.push(now)
        }
        const mine = inMyArc()
        const full = await takeArcCensus(holders.client(), arc, mine, GUESTS)
        // The digests kept up to date are those a census of every record computes.
        for (const g of GUESTS) assert.deepEqual(expected.get(g)?.encode(), full.expected?.get(g)?.encode())
        const readParts = (selected: ReadonlySet<number>): FileRecord[] => mine.filter((r) => selected.has(parts.partOf(ringPosition(r.name)) as number))
        const taken = await takePartCensus(holders.client(), parts, expected, changed, readParts)
        assert.ok(taken)
        const differing = new Set<number>()
        for (const g of GUESTS) {
          const answered = await holders.client().digests(g, arc, parts.count)
          for (const p of differingParts(expected.get(g)?.encode() ?? [], answered.parts)) differing.add(p)
        }
        const examined = new Set([...taken.records.map((r) => r.name)])
        const partOfKey = (line: string): number => parts.partOf(ringPosition(line.split('\u0000')[0] as string)) as number
        const nameOfKey = (line: string): string => line.split('\u0000')[0] as string
        // Where a part differed, or a name was read, the census sees what a census of everything sees.
        const relevant = (line: string): boolean => differing.has(partOfKey(line)) || examined.has(nameOfKey(line))
        assert.deepEqual(seen(taken.census, arc, taken.records).filter(relevant), seen(full, arc, mine).filter(relevant))
        // Everywhere else every guest holds exactly what the records say: nothing there needs looking at.
        for (const line of seen(full, arc, mine).filter((l) => !relevant(l))) {
          const record = records.get(nameOfKey(line))
          assert.ok(record && !record.deleted, `${line} is what a record says`)
        }
        assert.deepEqual(
          taken.records.map((r) => r.name).sort(),
          [...new Set([...changed.map((r) => r.name), ...readParts(differing).map((r) => r.name)])].sort(),
        )
      }),
      { numRuns: 80 },
    )
  })

  it('looks twice at parts that differ: a put in flight is not read, a loss is, and a part that differs only the second time waits', async () => {
    const holders = new Holders()
    const arc = { from: GUESTS[0] as GuestId, to: GUESTS[0] as GuestId }
    const parts = new ArcParts(arc)
    const recordOf = (i: number): FileRecord =>
      aRecord({
        name: `p/${i}`,
        fragments: [0, 1, 2].map((index) => ({ index, holder: GUESTS[(i + index) % GUESTS.length] as GuestId, digest: `${i}`.padEnd(64, '0') })),
      })
    // Files in three different parts of the ring.
    const [kept, lost, later, inFlight] = (() => {
      const out: FileRecord[] = []
      const used = new Set<number>()
      for (let i = 0; out.length < 4; i++) {
        const r = recordOf(i)
        const part = parts.partOf(ringPosition(r.name)) as number
        if (!used.has(part)) {
          used.add(part)
          out.push(r)
        }
      }
      return out as [FileRecord, FileRecord, FileRecord, FileRecord]
    })()
    const stored = [kept, lost, later]
    for (const r of stored) for (const f of r.fragments) holders.add(f.holder, copyOf(r, f.index))
    const expected = (await takeArcCensus(holders.client(), arc, stored, GUESTS)).expected as ReadonlyMap<GuestId, PartDigests>
    // A put in flight: its fragments are stored, its record not yet written.
    for (const f of inFlight.fragments) holders.add(f.holder, copyOf(inFlight, f.index))
    // A loss: one of `lost`'s fragments is gone from its holder.
    const gone = lost.fragments[1] as FileRecord['fragments'][number]
    holders.held.get(gone.holder)?.delete(`${lost.name}/${lost.version}/${gone.index}`)
    const partsRead: number[][] = []
    const read = (selected: ReadonlySet<number>): FileRecord[] => {
      partsRead.push([...selected].sort())
      return stored.filter((r) => selected.has(parts.partOf(ringPosition(r.name)) as number))
    }
    const settle = async (): Promise<FileRecord[]> => {
      // The put in flight is recorded; meanwhile a new version of `later` begins (its fragment is stored first).
      expect(expected, parts, inFlight, 1)
      holders.add(later.fragments[0]?.holder as GuestId, copyOf({ ...later, version: '0000000000009-00000000' }, 0, 'c'.repeat(64)))
      return [inFlight]
    }
    const laterChanged = { ...later, revision: later.revision + 1 }
    const taken = await takePartCensus(holders.client(), parts, expected, [laterChanged], read, undefined, settle)
    assert.ok(taken)
    const partOf = (r: FileRecord): number => parts.partOf(ringPosition(r.name)) as number
    assert.deepEqual(partsRead, [[partOf(lost)]], "only the part that differed both times is read: the lost fragment's")
    assert.deepEqual(
      taken.records.map((r) => r.name).sort(),
      [inFlight.name, lost.name].sort(),
      'the part that differed only the second time waits, records and all',
    )
    assert.deepEqual(taken.unplanned, [later.name], 'the changed record it holds back is named, for the next census to look at as changed')
    assert.deepEqual(copiesOf(taken.census, lost, gone.index), [], 'the lost fragment has no copy')
    assert.equal(copiesOf(taken.census, inFlight, 0).length, 1, 'the recorded put is vouched for')
    assert.equal(copiesOf(taken.census, kept, 0).length, 1)
  })
})
