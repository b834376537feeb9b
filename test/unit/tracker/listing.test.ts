import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import type { FileRecord } from '../../../src/peer/protocol/index.ts'
import { type Arc, primaryArc } from '../../../src/peer/ring/index.ts'
import { compareNames, decodeToken, encodeToken, mergePages, newestRecord, type Page, type PageQuery, TrackerStore } from '../../../src/peer/tracker/index.ts'
import { isHousePartyError } from '../../../src/shared/errors.ts'
import { silentLogger } from '../../../src/shared/logger.ts'
import { allRecords, aRecord } from '../../helpers/records.ts'

const dirs: string[] = []
const opened: TrackerStore[] = []
after(async () => {
  for (const s of opened) await s.close()
  for (const d of dirs) await rm(d, { recursive: true, force: true, maxRetries: 5 })
})

async function openStore(dir?: string): Promise<TrackerStore> {
  const at = dir ?? (await mkdtemp(join(tmpdir(), 'hp-listing-')))
  if (!dir) dirs.push(at)
  const store = new TrackerStore(at, silentLogger())
  await store.open()
  opened.push(store)
  return store
}

/** What a listing must give, computed the slow, obvious way over every live name. */
function expected(names: readonly string[], prefix: string, delimiter: string): string[] {
  const entries = new Set<string>()
  for (const name of names) {
    if (!name.startsWith(prefix)) continue
    const at = delimiter === '' ? -1 : name.indexOf(delimiter, prefix.length)
    entries.add(at < 0 ? name : name.slice(0, at + delimiter.length))
  }
  return [...entries].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
}

/**
 * Lists everything through pages of `limit`, as the API does: each guest asked for `guestLimit` entries (`limit`
 * unless given), whole for the names in its arc of `arcs` (all whole without arcs), the pages merged, the names
 * that came only brief read from the replicas (newest wins, as a where does), continued by token.
 */
function listAll(
  stores: readonly TrackerStore[],
  prefix: string,
  delimiter: string,
  limit: number,
  split: { arcs?: readonly Arc[]; guestLimit?: number } = {},
): { entries: string[]; pages: number } {
  const entries: string[] = []
  let start = { after: '', skip: false }
  for (let pages = 1; ; pages++) {
    const query: PageQuery = { prefix, delimiter, limit, ...start }
    const asked = { ...query, limit: split.guestLimit ?? limit }
    const merged = mergePages(
      stores.map((s, i): Page => s.page(asked, split.arcs?.[i])),
      query,
    )
    const resolved = merged.unresolved.flatMap((name) => {
      const record = newestRecord(stores.map((s) => s.get(name)))
      return record && !record.deleted ? [record.name] : []
    })
    entries.push(...merged.records.map((r) => r.name), ...resolved, ...merged.prefixes)
    assert.ok(merged.records.length + merged.unresolved.length + merged.prefixes.length <= limit, 'a page holds at most limit entries')
    assert.ok(merged.next || !merged.truncated, 'a truncated page says where the next one starts')
    if (!merged.next) return { entries: entries.sort(compareNames), pages }
    // The token round-trips through its text form, as a client hands it back.
    start = decodeToken(encodeToken(merged.next))
  }
}

/** Three guests on the ring, each primary of the names from its predecessor up to it. */
const guestIds = ['5555555555555555', 'aaaaaaaaaaaaaaaa', 'ffffffffffffffff']
const everyName: PageQuery = { prefix: '', delimiter: '', after: '', skip: false, limit: 100 }
/** The whole ring (an arc from a position to itself), and an arc of one position that no name in these tests lies at. */
const everywhere: Arc = { from: '0000000000000000', to: '0000000000000000' }
const shut: Arc = { from: 'fffffffffffffffe', to: 'ffffffffffffffff' }

describe('paged listing', () => {
  it('orders names by UTF-8 bytes, as S3 and SQLite do', () => {
    const names = ['b', 'a', 'ab', '\u{1F600}', '\uFF5E', 'é', 'A', '']
    const byBytes = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    assert.deepEqual([...names].sort(compareNames), byBytes)
  })

  it('pages through replicas that overlap, lists each name once, and folds common prefixes (property)', async () => {
    const stores = [await openStore(), await openStore(), await openStore()]
    const segment = fc.constantFrom('a', 'b', 'ab', 'x', 'é', '\u{1F600}', '-')
    const name = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/'))
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.record({ name, on: fc.subarray([0, 1, 2], { minLength: 1 }), deleted: fc.boolean() }), { selector: (f) => f.name, maxLength: 40 }),
        fc.constantFrom('', 'a', 'a/', 'ab/', '\u{1F600}'),
        fc.constantFrom('', '/'),
        fc.integer({ min: 1, max: 7 }),
        fc.option(fc.integer({ min: 1, max: 7 })),
        async (files, prefix, delimiter, limit, fewer) => {
          for (const s of stores) for (const r of await allRecords(s)) s.forget(r.name)
          for (const f of files) for (const i of f.on) stores[i]?.watch(aRecord({ name: f.name, deleted: f.deleted }))
          const live = files.filter((f) => !f.deleted).map((f) => f.name)
          const want = expected(live, prefix, delimiter)
          assert.deepEqual(listAll(stores, prefix, delimiter, limit).entries, want)
          // Each guest whole only for its primary arc (a name may be missing there), asked for fewer entries than the page.
          const split = { arcs: guestIds.map((id) => primaryArc(guestIds, id)), guestLimit: fewer ?? limit }
          assert.deepEqual(listAll(stores, prefix, delimiter, limit, split).entries, want)
        },
      ),
      { numRuns: 150 },
    )
  })

  it('a stale live record on one replica loses to a newer tombstone on another', async () => {
    const [a, b] = [await openStore(), await openStore()]
    a.watch(aRecord({ name: 'gone', version: '1700000000000-aaaaaaaa' }))
    b.watch(aRecord({ name: 'gone', version: '1700000000001-bbbbbbbb', deleted: true }))
    b.watch(aRecord({ name: 'kept' }))
    assert.deepEqual(listAll([a, b], '', '', 1).entries, ['kept'])
    // a lists every name whole and b only brief: b's newer tombstone still wins; 'kept', only on b, is to be read.
    const merged = mergePages([a.page(everyName, everywhere), b.page(everyName, shut)], everyName)
    assert.deepEqual([merged.records, merged.unresolved], [[], ['kept']])
  })

  it("a brief entry newer than the primary's whole record sends the asker to the trackers for the name", async () => {
    const [primary, replica] = [await openStore(), await openStore()]
    const old = aRecord({ name: 'doc', version: '1700000000000-aaaaaaaa', size: 1 })
    primary.watch(old)
    replica.watch({ ...old, version: '1700000000001-bbbbbbbb', size: 2 })
    const merged = mergePages([primary.page(everyName, everywhere), replica.page(everyName, shut)], everyName)
    assert.deepEqual([merged.records, merged.unresolved], [[], ['doc']])
    // The same version whole and brief: the whole record is listed, nothing is read again.
    replica.watch({ ...old, version: '1700000000001-bbbbbbbb', size: 2 })
    primary.watch({ ...old, version: '1700000000001-bbbbbbbb', size: 2 })
    const agreed = mergePages([primary.page(everyName, everywhere), replica.page(everyName, shut)], everyName)
    assert.deepEqual([agreed.records.map((r) => r.size), agreed.unresolved], [[2], []])
  })

  it('reads about as many rows as a page holds, however many names sit under a folded prefix', async () => {
    const store = await openStore()
    for (let i = 0; i < 2000; i++) store.watch(aRecord({ name: `logs/${String(i).padStart(4, '0')}` }))
    store.watch(aRecord({ name: 'readme' }))
    const page = store.page({ prefix: '', delimiter: '/', after: '', skip: false, limit: 10 })
    assert.deepEqual([page.prefixes, page.records.map((r) => r.name), page.truncated], [['logs/'], ['readme'], false])
    // Every name once, in order, across pages.
    const { entries, pages } = listAll([store], 'logs/', '', 500)
    assert.deepEqual(
      entries,
      Array.from({ length: 2000 }, (_, i) => `logs/${String(i).padStart(4, '0')}`),
    )
    assert.equal(pages, 4)
  })

  it('refuses a continuation token it did not hand out', () => {
    for (const bad of ['', 'not base64 json', Buffer.from('[1,2]').toString('base64url'), Buffer.from('["a",7]').toString('base64url')]) {
      assert.throws(
        () => decodeToken(bad),
        (e) => isHousePartyError(e, 'ERR_INVALID_ARGUMENT'),
      )
    }
  })

  it('imports the records of the earlier layout (one JSON file each) on first start, and keeps them across restarts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hp-legacy-'))
    dirs.push(dir)
    await mkdir(join(dir, 'tracker'))
    const records: FileRecord[] = [aRecord({ name: 'one' }), aRecord({ name: 'two/three' })]
    for (const [i, r] of records.entries()) await writeFile(join(dir, 'tracker', `${i}.json`), JSON.stringify(r))
    await writeFile(join(dir, 'tracker', 'broken.json'), '{"not": "a record"')
    const store = await openStore(dir)
    assert.deepEqual(store.get('two/three'), records[1])
    assert.equal(store.size, 2)
    assert.equal((await readdir(dir)).includes('tracker'), false, 'the earlier layout is gone once imported')
    await store.close()
    const again = await openStore(dir)
    assert.deepEqual(
      (await allRecords(again)).map((r) => r.name),
      ['one', 'two/three'],
    )
    await again.close()
  })
})
