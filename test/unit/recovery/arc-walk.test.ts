import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import type { FileRecord, GuestId } from '../../../src/peer/protocol/index.ts'
import { ArcWalk, catchUp } from '../../../src/peer/recovery/arc-walk.ts'
import { expect } from '../../../src/peer/recovery/index.ts'
import { ArcParts, inArc, PartDigests, primaryArc, ringPosition } from '../../../src/peer/ring/index.ts'
import { TrackerStore } from '../../../src/peer/tracker/index.ts'
import { yieldToLoop } from '../../../src/shared/lifecycle.ts'
import { silentLogger } from '../../../src/shared/logger.ts'
import { aRecord } from '../../helpers/records.ts'

const GUESTS: GuestId[] = ['2000000000000000', '6000000000000000', 'a000000000000000', 'e000000000000000']
const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true, maxRetries: 5 })
})

function recordOf(i: number, version = 1): FileRecord {
  const v = `${String(version).padStart(13, '0')}-00000000`
  return aRecord({
    name: `w/${i}`,
    version: v,
    fragments: [0, 1, 2].map((index) => ({
      index,
      holder: GUESTS[(i + index + version) % GUESTS.length] as GuestId,
      digest: `${i}.${version}.${index}`.padEnd(64, '0'),
    })),
  })
}

/** What a census of every record of `arc` as the store holds them now expects each guest to hold, and the live files. */
function digestsNow(store: TrackerStore, arc: ReturnType<typeof primaryArc>, names: Iterable<string>): { expected: string[][]; files: number } {
  const parts = new ArcParts(arc)
  const expected = new Map(GUESTS.map((g) => [g, new PartDigests(parts.count)]))
  let files = 0
  for (const name of names) {
    const r = store.get(name)
    if (!r || !inArc(ringPosition(name), arc)) continue
    expect(expected, parts, r, 1)
    if (!r.deleted) files++
  }
  return { expected: GUESTS.map((g) => expected.get(g)?.encode() ?? []), files }
}

const write = fc.record({ kind: fc.constantFrom('put', 'replace', 'delete', 'forget'), file: fc.nat({ max: 80 }) })

/** A tracker's store with records w/0 … w/n-1, and a way to write as a put, a replacement, a deletion or a handoff would. */
async function storeOf(n: number): Promise<{ store: TrackerStore; names: Set<string>; apply: (w: { kind: string; file: number }) => void }> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-walk-'))
  dirs.push(dir)
  const store = new TrackerStore(dir, silentLogger())
  await store.open()
  const names = new Set<string>()
  const put = (r: FileRecord): void => {
    store.watch(r)
    names.add(r.name)
  }
  for (let i = 0; i < n; i++) put(recordOf(i))
  const apply = (w: { kind: string; file: number }): void => {
    const current = store.get(`w/${w.file}`)
    if (w.kind === 'put' && !current) put(recordOf(w.file))
    if (w.kind === 'replace') put(recordOf(w.file, (current ? Number(current.version.slice(0, 13)) : 1) + 1))
    if (w.kind === 'delete' && current) put({ ...current, revision: current.revision + 1, deleted: true })
    if (w.kind === 'forget') store.forget(`w/${w.file}`)
  }
  return { store, names, apply }
}

describe('a walk over an arc in chunks', () => {
  it('expects of each guest what a census of every record at the end of the walk would, whatever was written between chunks (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 1, max: 9 }),
        fc.array(fc.array(write, { maxLength: 4 }), { maxLength: 12 }),
        fc.constantFrom(...GUESTS, 'alone'),
        // The chunk after which the pass forgets the names written behind it (it left something waiting), if any.
        fc.option(fc.nat({ max: 12 }), { nil: undefined }),
        async (n, chunk, writes, self, forgetAt) => {
          const { store, names, apply } = await storeOf(n)
          // Alone, a guest is primary of the whole ring: walked from position 0 up, in chunks all the same.
          const arc = self === 'alone' ? primaryArc([GUESTS[0] as GuestId], GUESTS[0] as GuestId) : primaryArc(GUESTS, self)
          const walk = new ArcWalk(store, arc, GUESTS, chunk)
          const seen: string[] = []
          const read = new Map<string, FileRecord>()
          let step = 0
          for (const c of walk.chunks()) {
            seen.push(...c.records.map((r) => r.name))
            for (const r of c.records) read.set(r.name, r)
            // Puts, replacements, deletions and forgotten records land anywhere in the arc: before, in and after what was read.
            for (const w of writes[step] ?? []) apply(w)
            if (step++ === forgetAt) walk.forgetUnplanned()
          }
          const now = digestsNow(store, arc, names)
          assert.deepEqual(
            GUESTS.map((g) => walk.expected.get(g)?.encode() ?? []),
            now.expected,
          )
          assert.equal(walk.files, now.files)
          assert.ok(walk.logged)
          assert.equal(walk.changes, store.changes)
          assert.equal(new Set(seen).size, seen.length, 'each record read once')
          // Forgetting the names changes nothing else: the digests above stand.
          const forgotten = forgetAt !== undefined && forgetAt < step
          assert.equal(walk.unplanned === undefined, forgotten)
          for (const name of forgotten ? [] : names) {
            const current = store.get(name)
            if (!current || !inArc(ringPosition(name), arc) || JSON.stringify(read.get(name)) === JSON.stringify(current)) continue
            assert.ok(walk.unplanned?.has(name), `${name} changed behind the walk: the next census is told to plan it`)
          }
          assert.equal(store.takeChanges()?.size, 0, 'the change log starts where the digests stand')
          await store.close()
        },
      ),
      { numRuns: 40 },
    )
  })

  it('brought up to date from the change log a slice at a time, with writes while it yields, expects what a census of every record would (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 60 }),
        fc.array(write, { maxLength: 30 }),
        fc.array(write, { maxLength: 30 }),
        fc.integer({ min: 1, max: 5 }),
        fc.constantFrom(...GUESTS),
        async (n, before, during, slice, self) => {
          const { store, names, apply } = await storeOf(n)
          const arc = primaryArc(GUESTS, self)
          const walk = new ArcWalk(store, arc, GUESTS)
          for (const _ of walk.chunks()) {
            // every record, as a full pass reads them
          }
          for (const w of before) apply(w)
          // Writes land while the census yields between slices.
          let done = false
          const writer = (async () => {
            for (const w of during) {
              if (done) return
              apply(w)
              await yieldToLoop()
            }
          })()
          const caught = await catchUp(store, walk.parts, walk.expected, slice)
          done = true
          await writer
          assert.ok(caught)
          const now = digestsNow(store, arc, names)
          assert.deepEqual(
            GUESTS.map((g) => walk.expected.get(g)?.encode() ?? []),
            now.expected,
          )
          assert.equal(walk.files + caught.files, now.files)
          assert.equal(store.takeChanges()?.size, 0, 'the log starts over where the digests stand')
          await store.close()
        },
      ),
      { numRuns: 40 },
    )
  })
})
