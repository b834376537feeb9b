import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import { type Arc, inArc, ringPosition, trackedArc, trackersOf } from '../../../src/peer/ring/index.ts'
import { listedOf, TrackerStore, walkBounds } from '../../../src/peer/tracker/index.ts'
import { silentLogger } from '../../../src/shared/logger.ts'
import { aRecord } from '../../helpers/records.ts'

const hex16 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((n) => n.toString(16).padStart(16, '0'))
const dirs: string[] = []

/** The records of `arc` read in chunks of `limit`, checking that the chunks tile the arc in ring order and each holds only its stretch. */
function chunked(store: TrackerStore, arc: Arc, limit: number): { names: string[]; chunks: number } {
  const names: string[] = []
  const { start, end } = walkBounds(arc)
  let from = start
  let chunks = 0
  let to = start
  for (const chunk of store.chunks(arc, limit)) {
    chunks++
    assert.equal(chunk.arc.from, from, 'each chunk starts where the last ended')
    for (const r of chunk.records) assert.ok(inArc(ringPosition(r.name), chunk.arc), `${r.name} lies in its chunk's stretch`)
    names.push(...chunk.records.map((r) => r.name))
    from = chunk.arc.to
    to = chunk.arc.to
  }
  assert.equal(to, end, "the last chunk ends at the walk's end")
  return { names, chunks }
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true, maxRetries: 5 })
})

describe('records by arc', () => {
  it('a guest is among the trackers of a name exactly when the name lies in its tracked arc', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(hex16, { minLength: 1, maxLength: 9 }),
        fc.array(fc.string({ minLength: 1 }), { maxLength: 30 }),
        fc.integer({ min: 1, max: 4 }),
        (guests, names, replicas) => {
          for (const self of guests) {
            const arc = trackedArc(guests, self, replicas)
            for (const name of names) assert.equal(trackersOf(guests, name, replicas).includes(self), inArc(ringPosition(name), arc), `${name} and ${self}`)
          }
        },
      ),
      { numRuns: 100 },
    )
  })

  it('reads the records of an arc, and of its outside, from the index as a brute-force filter would', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hp-arcs-'))
    dirs.push(dir)
    const store = new TrackerStore(dir, silentLogger())
    await store.open()
    // More than a chunk of a walk over an arc (1,000 records here).
    const names = Array.from({ length: 2500 }, (_, i) => `f/${i}`)
    for (const name of names) store.watch(aRecord({ name }))
    await store.committed()
    const arcs: Arc[] = [
      { from: '4000000000000000', to: 'c000000000000000' },
      { from: 'c000000000000000', to: '4000000000000000' },
      { from: ringPosition('f/7'), to: ringPosition('f/7') },
      { from: ringPosition('f/7'), to: ringPosition('f/8') },
    ]
    for (const arc of arcs) {
      const expected = names.filter((n) => inArc(ringPosition(n), arc)).sort()
      const { names: paged, chunks } = chunked(store, arc, 1000)
      assert.equal(paged.length, expected.length, 'each record once')
      assert.deepEqual(paged.sort(), expected)
      assert.equal(chunks, Math.floor(expected.length / 1000) + 1, 'a chunk per thousand, the last one partly full (the whole ring too)')
      const rest = arc.from === arc.to ? [] : names.filter((n) => !expected.includes(n)).sort()
      assert.deepEqual([...store.outside(arc)].map((r) => r.name).sort(), rest)
    }
    const walked: string[] = []
    for await (const record of store.everyRecord()) walked.push(record.name)
    assert.deepEqual(walked, [...names].sort(), 'every record once, in name order')
    await store.close()
  })

  it('gives the records of an index of the layout before positions their positions and versions on first open', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hp-arcs-'))
    dirs.push(dir)
    const db = new DatabaseSync(join(dir, 'index.db'))
    db.exec(`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID; INSERT INTO meta VALUES ('schema', '1');
      CREATE TABLE records (name TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID`)
    const insert = db.prepare('INSERT INTO records VALUES (?, ?)')
    for (const name of ['a', 'b', 'c']) insert.run(name, JSON.stringify(aRecord({ name })))
    db.close()
    const store = new TrackerStore(dir, silentLogger())
    await store.open()
    const whole = { from: '0000000000000000', to: '0000000000000000' }
    assert.deepEqual(chunked(store, whole, 1000).names.sort(), ['a', 'b', 'c'])
    const arc = { from: ringPosition('a'), to: ringPosition('b') }
    assert.deepEqual(
      chunked(store, arc, 1).names.sort(),
      ['a', 'b', 'c'].filter((n) => inArc(ringPosition(n), arc)),
    )
    // Schema 3: each record's version, revision and deleted flag read without the record.
    const none = { from: 'fffffffffffffffe', to: 'ffffffffffffffff' }
    const page = store.page({ prefix: '', delimiter: '', after: '', skip: false, limit: 10 }, none)
    const { version, revision } = aRecord()
    assert.deepEqual([page.records, page.brief], [[], ['a', 'b', 'c'].map((name) => [name, version, revision, false])])
    // Schema 5: a row written before it is shown whole from its record, one written since from what it keeps for listings.
    const newer = aRecord({ name: 'b', version: '0000000000009-00000000', meta: { etag: 'd41d8cd98f00b204e9800998ecf8427e' } })
    store.watch(newer)
    const shown = store.page({ prefix: '', delimiter: '', after: '', skip: false, limit: 10 }, whole)
    assert.deepEqual(shown.records, [listedOf(aRecord({ name: 'a' })), listedOf(newer), listedOf(aRecord({ name: 'c' }))])
    assert.equal(shown.records[1]?.etag, 'd41d8cd98f00b204e9800998ecf8427e')
    await store.close()
  })
})
