import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { FileRecord, GuestId } from '../../../src/peer/protocol/index.ts'
import { RecordHandoff } from '../../../src/peer/recovery/handoff.ts'
import { type Arc, ArcParts, inArc, PartDigests, ringPosition, successors, type trackedArc, trackersOf } from '../../../src/peer/ring/index.ts'
import { compareRecords, type TrackerStore } from '../../../src/peer/tracker/index.ts'
import type { TrackerClient } from '../../../src/peer/transfer/index.ts'
import { silentLogger } from '../../../src/shared/logger.ts'
import { aRecord, recordDigestsOf } from '../../helpers/records.ts'

const REPLICAS = 3
const SELF = '2000000000000000' as GuestId
const BEFORE: GuestId[] = [SELF, '6000000000000000', 'a000000000000000', 'e000000000000000']
/** One guest more: the ring changed, and part of every tracker set with it. */
const AFTER: GuestId[] = [...BEFORE, 'c000000000000000']

const positions = new Map<string, string>()
/** A name's ring position, computed once (the tests ask for the same names many times). */
function positionOf(name: string): string {
  let position = positions.get(name)
  if (position === undefined) {
    position = ringPosition(name)
    positions.set(name, position)
  }
  return position
}

/** A tracker's records, read as the store reads them: every one page by page, those outside an arc, or by digest. */
class Records {
  readonly byName = new Map<string, FileRecord>()
  readonly forgotten: string[] = []
  walks = 0

  digestsIn(arc: Arc, parts: number): PartDigests {
    const out = new PartDigests(new ArcParts(arc, parts).count)
    const encoded = recordDigestsOf(this.byName.values(), arc, parts)
    for (const [i, e] of encoded.entries()) {
      const [xor = '0', count = '0'] = e.split('.')
      out.xor[i] = BigInt(`0x${xor}`)
      out.count[i] = Number(count)
    }
    return out
  }

  watch(record: FileRecord): { accepted: boolean } {
    const current = this.byName.get(record.name)
    if (current && compareRecords(record, current) <= 0) return { accepted: false }
    this.byName.set(record.name, record)
    return { accepted: true }
  }

  async committed(): Promise<void> {}

  *inParts(arc: Arc, parts: number, selected: ReadonlySet<number>): Generator<FileRecord> {
    const split = new ArcParts(arc, parts)
    for (const r of this.byName.values()) {
      const part = split.partOf(positionOf(r.name))
      if (part !== undefined && selected.has(part)) yield r
    }
  }

  async *everyRecord(): AsyncGenerator<FileRecord> {
    this.walks++
    for (const r of [...this.byName.values()]) yield r
  }

  outside(arc: ReturnType<typeof trackedArc>): FileRecord[] {
    return [...this.byName.values()].filter((r) => !inArc(positionOf(r.name), arc))
  }

  forget(name: string): void {
    this.byName.delete(name)
    this.forgotten.push(name)
  }
}

/** The other trackers, as `sync` and `recordDigests` reach them: what each holds and took, in which calls, and one that can be made to fail. */
class Trackers {
  readonly replicas = REPLICAS
  readonly took = new Map<GuestId, string[]>()
  /** What each other tracker keeps, name → record (newer wins, as a watch). */
  readonly held = new Map<GuestId, Map<string, FileRecord>>()
  readonly calls: { target: GuestId; records: number }[] = []
  failing: GuestId | undefined

  trackersOf(name: string, among: readonly GuestId[]): GuestId[] {
    return trackersOf(among, name, REPLICAS)
  }

  trackersAt(position: GuestId, among: readonly GuestId[]): GuestId[] {
    return successors(among, position, REPLICAS)
  }

  async recordDigests(target: GuestId, arc: Arc, parts: number): Promise<string[]> {
    this.calls.push({ target, records: 0 })
    if (target === this.failing) throw new Error('no answer')
    return recordDigestsOf(this.held.get(target)?.values() ?? [], arc, parts)
  }

  /** A part's records in replies of two, as a tracker pages a large part. */
  async *recordsIn(target: GuestId, arc: Arc, parts: number, part: number): AsyncGenerator<FileRecord[]> {
    const split = new ArcParts(arc, parts)
    const all = [...(this.held.get(target)?.values() ?? [])].filter((r) => split.partOf(positionOf(r.name)) === part)
    for (let at = 0; at === 0 || at < all.length; at += 2) {
      this.calls.push({ target, records: 0 })
      if (target === this.failing) throw new Error('no answer')
      yield all.slice(at, at + 2)
    }
  }

  async sync(target: GuestId, records: readonly FileRecord[]): Promise<number> {
    this.calls.push({ target, records: records.length })
    if (target === this.failing) throw new Error('no answer')
    this.took.set(target, [...(this.took.get(target) ?? []), ...records.map((r) => r.name)])
    const held = this.held.get(target) ?? new Map<string, FileRecord>()
    for (const r of records) if (!held.has(r.name) || compareRecords(r, held.get(r.name) as FileRecord) > 0) held.set(r.name, r)
    this.held.set(target, held)
    return records.length
  }

  /** The calls that carried records. */
  get syncs(): { target: GuestId; records: number }[] {
    return this.calls.filter((c) => c.records > 0)
  }
}

function setUp(count: number): { records: Records; trackers: Trackers; handoff: RecordHandoff } {
  const records = new Records()
  for (let i = 0; i < count; i++) {
    const r = aRecord({ name: `h/${i}` })
    if (trackersOf(BEFORE, r.name, REPLICAS).includes(SELF)) records.byName.set(r.name, r)
  }
  const trackers = new Trackers()
  const handoff = new RecordHandoff(records as unknown as TrackerStore, trackers as unknown as TrackerClient, silentLogger())
  return { records, trackers, handoff }
}

describe('tracker handoff', () => {
  it('after a ring change, sends every record its new trackers lack, in calls of at most 2,000, and forgets those it no longer tracks', async () => {
    const { records, trackers, handoff } = setUp(12_000)
    const kept = [...records.byName.values()]
    assert.ok(kept.length > 4_000, 'enough records that every tracker gets several calls')
    await handoff.run(SELF, AFTER)
    for (const r of kept) {
      for (const t of trackersOf(AFTER, r.name, REPLICAS).filter((t) => t !== SELF)) {
        assert.equal(trackers.took.get(t)?.filter((n) => n === r.name).length, 1, `${r.name} reached ${t} once`)
      }
    }
    assert.ok(
      trackers.calls.every((c) => c.records <= 2_000),
      'no call carries more than a batch',
    )
    assert.ok(trackers.syncs.length > AFTER.length, 'sent in several calls per tracker')
    const dropped = kept.filter((r) => !trackersOf(AFTER, r.name, REPLICAS).includes(SELF)).map((r) => r.name)
    assert.ok(dropped.length > 0)
    assert.deepEqual([...records.forgotten].sort(), dropped.sort())

    // The ring handed off: the next pass reads only records outside the arc this peer tracks (none), and sends nothing.
    const calls = trackers.calls.length
    const walks = records.walks
    await handoff.run(SELF, AFTER)
    assert.equal(trackers.calls.length, calls)
    assert.equal(records.walks, walks)
  })

  it('sends nothing more to a tracker that failed, keeps what only it would take, and compares again next time', async () => {
    const { records, trackers, handoff } = setUp(12_000)
    const kept = [...records.byName.values()]
    const failing = AFTER.find((g) => g !== SELF) as GuestId
    trackers.failing = failing
    await handoff.run(SELF, AFTER)
    assert.equal(trackers.calls.filter((c) => c.target === failing).length, 1, 'one failed call, then nothing more to it')
    const asked = trackers.calls.length
    for (const r of kept) {
      const others = trackersOf(AFTER, r.name, REPLICAS).filter((t) => t !== SELF)
      const mine = others.length < REPLICAS
      const takenElsewhere = others.some((t) => t !== failing)
      assert.equal(records.byName.has(r.name), mine || !takenElsewhere, `${r.name} is kept only while no tracker took it or it is still mine`)
    }
    trackers.failing = undefined
    await handoff.run(SELF, AFTER)
    assert.ok(
      trackers.calls.slice(asked).some((c) => c.target === failing),
      'the ring is not handed off until every tracker was reached: the next pass compares again',
    )
    // What this peer still keeps reaches the tracker it missed (the rest went to other trackers, which hand it on).
    for (const r of records.byName.values()) {
      if (trackersOf(AFTER, r.name, REPLICAS).includes(failing)) assert.ok(trackers.took.get(failing)?.includes(r.name), `${r.name} reached ${failing}`)
    }
  })
})

describe('tracker handoff on leaving', () => {
  it('sends every record to its trackers on the ring without this peer, and forgets them all', async () => {
    const { records, trackers, handoff } = setUp(3_000)
    const kept = [...records.byName.values()]
    const others = BEFORE.filter((g) => g !== SELF)
    await handoff.run(SELF, others)
    assert.equal(records.walks, 1)
    for (const r of kept) {
      for (const t of trackersOf(others, r.name, REPLICAS)) assert.ok(trackers.held.get(t)?.has(r.name), `${r.name} reached ${t}`)
    }
    assert.equal(records.byName.size, 0)
  })
})

describe('tracker handoff after a start', () => {
  it('compares each arc with its other trackers by digest and sends only the records of the parts that differ', async () => {
    const { records, trackers, handoff } = setUp(12_000)
    // A party where nothing moved: every other tracker already keeps what this peer keeps of its arcs...
    for (const r of records.byName.values()) {
      for (const t of trackersOf(BEFORE, r.name, REPLICAS).filter((t) => t !== SELF)) {
        const held = trackers.held.get(t) ?? new Map<string, FileRecord>()
        held.set(r.name, r)
        trackers.held.set(t, held)
      }
    }
    await handoff.run(SELF, BEFORE)
    assert.equal(trackers.syncs.length, 0, 'replicas that agree are sent nothing')
    assert.equal(records.walks, 0, 'and no record is walked')

    // ...but one missed a watch while this peer was away, another keeps an older version of a record, and a third
    // took a newer version while this peer was away.
    const [missed, stale, behind] = [...records.byName.values()].filter((r) => trackersOf(BEFORE, r.name, REPLICAS).length === REPLICAS)
    assert.ok(missed && stale && behind)
    const newer = { ...behind, version: '9999999999999-00000000' }
    const newerAt = trackersOf(BEFORE, behind.name, REPLICAS).find((t) => t !== SELF) as GuestId
    trackers.held.get(newerAt)?.set(newer.name, newer)
    const missedBy = trackersOf(BEFORE, missed.name, REPLICAS).find((t) => t !== SELF) as GuestId
    const staleAt = trackersOf(BEFORE, stale.name, REPLICAS).find((t) => t !== SELF) as GuestId
    trackers.held.get(missedBy)?.delete(missed.name)
    trackers.held.get(staleAt)?.set(stale.name, { ...stale, version: '0000000000001-00000000' })
    const fresh = new RecordHandoff(records as unknown as TrackerStore, trackers as unknown as TrackerClient, silentLogger())
    await fresh.run(SELF, BEFORE)
    assert.deepEqual(trackers.held.get(missedBy)?.get(missed.name), missed, 'the missed record reached its tracker')
    assert.deepEqual(trackers.held.get(staleAt)?.get(stale.name), stale, 'the stale one was replaced')
    assert.deepEqual(records.byName.get(behind.name), newer, 'the newer version was taken from the tracker that had it')
    for (const t of trackersOf(BEFORE, behind.name, REPLICAS).filter((t) => t !== SELF)) {
      assert.deepEqual(trackers.held.get(t)?.get(behind.name), newer, `and reached ${t} too`)
    }
    const sent = trackers.syncs.reduce((n, c) => n + c.records, 0)
    assert.ok(sent < records.byName.size / 10, `only the records of the parts that differ went (${sent} of ${records.byName.size})`)
  })
})
