import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { FileRecord, GuestId } from '../../../src/peer/protocol/index.ts'
import { RecordHandoff } from '../../../src/peer/recovery/handoff.ts'
import { inArc, ringPosition, type trackedArc, trackersOf } from '../../../src/peer/ring/index.ts'
import type { TrackerStore } from '../../../src/peer/tracker/index.ts'
import type { TrackerClient } from '../../../src/peer/transfer/index.ts'
import { silentLogger } from '../../../src/shared/logger.ts'
import { aRecord } from '../../helpers/records.ts'

const REPLICAS = 3
const SELF = '2000000000000000' as GuestId
const BEFORE: GuestId[] = [SELF, '6000000000000000', 'a000000000000000', 'e000000000000000']
/** One guest more: the ring changed, and part of every tracker set with it. */
const AFTER: GuestId[] = [...BEFORE, 'c000000000000000']

/** A tracker's records, read as the store reads them: every one page by page, or those outside an arc. */
class Records {
  readonly byName = new Map<string, FileRecord>()
  readonly forgotten: string[] = []
  walks = 0

  async *everyRecord(): AsyncGenerator<FileRecord> {
    this.walks++
    for (const r of [...this.byName.values()]) yield r
  }

  outside(arc: ReturnType<typeof trackedArc>): FileRecord[] {
    return [...this.byName.values()].filter((r) => !inArc(ringPosition(r.name), arc))
  }

  forget(name: string): void {
    this.byName.delete(name)
    this.forgotten.push(name)
  }
}

/** The other trackers, as `sync` reaches them: what each took, in which calls, and one that can be made to fail. */
class Trackers {
  readonly replicas = REPLICAS
  readonly took = new Map<GuestId, string[]>()
  readonly calls: { target: GuestId; records: number }[] = []
  failing: GuestId | undefined

  trackersOf(name: string, among: readonly GuestId[]): GuestId[] {
    return trackersOf(among, name, REPLICAS)
  }

  async sync(target: GuestId, records: readonly FileRecord[]): Promise<number> {
    this.calls.push({ target, records: records.length })
    if (target === this.failing) throw new Error('no answer')
    this.took.set(target, [...(this.took.get(target) ?? []), ...records.map((r) => r.name)])
    return records.length
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
  it('sends every record to its other trackers as it walks, in calls of at most 2,000, and forgets those it no longer tracks', async () => {
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
    assert.ok(trackers.calls.length > AFTER.length, 'sent in several calls per tracker')
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

  it('sends nothing more to a tracker that failed, keeps what only it would take, and walks everything again next time', async () => {
    const { records, trackers, handoff } = setUp(12_000)
    const kept = [...records.byName.values()]
    const failing = AFTER.find((g) => g !== SELF) as GuestId
    trackers.failing = failing
    await handoff.run(SELF, AFTER)
    assert.equal(trackers.calls.filter((c) => c.target === failing).length, 1, 'one failed call, then nothing more to it')
    for (const r of kept) {
      const others = trackersOf(AFTER, r.name, REPLICAS).filter((t) => t !== SELF)
      const mine = others.length < REPLICAS
      const takenElsewhere = others.some((t) => t !== failing)
      assert.equal(records.byName.has(r.name), mine || !takenElsewhere, `${r.name} is kept only while no tracker took it or it is still mine`)
    }
    trackers.failing = undefined
    const walks = records.walks
    await handoff.run(SELF, AFTER)
    assert.equal(records.walks, walks + 1, 'the ring is not handed off until every tracker was reached: the next pass walks again')
    // What this peer still keeps reaches the tracker it missed (the rest went to other trackers, which hand it on).
    for (const r of records.byName.values()) {
      if (trackersOf(AFTER, r.name, REPLICAS).includes(failing)) assert.ok(trackers.took.get(failing)?.includes(r.name), `${r.name} reached ${failing}`)
    }
  })
})
