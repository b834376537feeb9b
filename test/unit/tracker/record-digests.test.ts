import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { describe, it } from 'node:test'
import { type FileRecord, MAX_RECORDS_PER_REPLY } from '../../../src/peer/protocol/index.ts'
import { type Arc, ArcParts, ringPosition } from '../../../src/peer/ring/index.ts'
import { answerTracker, TrackerStore } from '../../../src/peer/tracker/index.ts'
import { silentLogger } from '../../../src/shared/logger.ts'
import { aRecord, recordDigestsOf } from '../../helpers/records.ts'

const PARTS = 64
const WHOLE: Arc = { from: '0000000000000000', to: '0000000000000000' }
/** An arc that ends inside buckets on both sides: its end buckets are counted record by record. */
const SOME: Arc = { from: '3fff8000000000aa', to: 'c00070000000ffff' }

/** The digests a brute-force count over `records` gives. */
function expected(records: Iterable<FileRecord>, arc: Arc): string[] {
  return recordDigestsOf(records, arc, PARTS)
}

async function withStore(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'houseparty-record-digests-'))
  try {
    await run(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

describe('record digests', () => {
  it('follow every watch, replacement and forget, and are read back at start (or counted once from an index without them)', async () => {
    await withStore(async (dir) => {
      const current = new Map<string, FileRecord>()
      let store = new TrackerStore(dir, silentLogger())
      await store.open()
      for (let i = 0; i < 600; i++) {
        const r = aRecord({ name: `d/${i}` })
        store.watch(r)
        current.set(r.name, r)
      }
      for (let i = 0; i < 600; i += 3) {
        const r = aRecord({ name: `d/${i}`, version: '0000000000002-00000000', deleted: i % 2 === 0 })
        store.watch(r)
        current.set(r.name, r)
      }
      for (let i = 1; i < 600; i += 7) {
        store.forget(`d/${i}`)
        current.delete(`d/${i}`)
      }
      // An older record changes nothing.
      store.watch(aRecord({ name: 'd/0', version: '0000000000000-00000000' }))
      await store.committed()
      for (const arc of [WHOLE, SOME]) assert.deepEqual(store.digestsIn(arc, PARTS).encode(), expected(current.values(), arc))
      await store.close()

      store = new TrackerStore(dir, silentLogger())
      await store.open()
      for (const arc of [WHOLE, SOME]) assert.deepEqual(store.digestsIn(arc, PARTS).encode(), expected(current.values(), arc), 'read back at start')
      await store.close()

      // An index written before the digests were kept (schema 3): counted from its records on first open.
      const db = new DatabaseSync(join(dir, 'index.db'))
      db.exec("DELETE FROM buckets; DELETE FROM meta WHERE key = 'buckets'; UPDATE meta SET value = '3' WHERE key = 'schema'")
      db.close()
      store = new TrackerStore(dir, silentLogger())
      await store.open()
      for (const arc of [WHOLE, SOME]) assert.deepEqual(store.digestsIn(arc, PARTS).encode(), expected(current.values(), arc), 'counted once')
      await store.close()
    })
  })

  it('list the records of the selected parts of an arc, and only those', async () => {
    await withStore(async (dir) => {
      const store = new TrackerStore(dir, silentLogger())
      await store.open()
      const all: FileRecord[] = []
      for (let i = 0; i < 400; i++) {
        const r = aRecord({ name: `p/${i}` })
        store.watch(r)
        all.push(r)
      }
      const selected = new Set([0, 5, 17, 63])
      const parts = new ArcParts(SOME, PARTS)
      const want = all.filter((r) => selected.has(parts.partOf(ringPosition(r.name)) ?? -1)).map((r) => r.name)
      assert.ok(want.length > 0)
      assert.deepEqual([...store.inParts(SOME, PARTS, selected)].map((r) => r.name).sort(), want.sort())
      await store.close()
    })
  })

  it('answer `recordsIn` a reply at a time: every record of a large part once, over several replies', async () => {
    await withStore(async (dir) => {
      const store = new TrackerStore(dir, silentLogger())
      await store.open()
      const total = MAX_RECORDS_PER_REPLY * 2 + 37
      for (let i = 0; i < total; i++) store.watch(aRecord({ name: `p/${i}` }))
      await store.committed()
      const names: string[] = []
      const replies: boolean[] = []
      for (let skip = 0; ; ) {
        const reply = await answerTracker({ op: 'recordsIn', arc: WHOLE, parts: 1, part: 0, skip }, store)
        const { records, more } = reply as { records: FileRecord[]; more: boolean }
        assert.ok(records.length <= MAX_RECORDS_PER_REPLY)
        names.push(...records.map((r) => r.name))
        replies.push(more)
        if (!more) break
        skip += records.length
      }
      assert.deepEqual(replies, [true, true, false])
      assert.equal(names.length, total)
      assert.equal(new Set(names).size, total)
      await store.close()
    })
  })
})
