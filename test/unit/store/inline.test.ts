import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import { fragmentDigest } from '../../../src/peer/codec/index.ts'
import { codeWhole } from '../../../src/peer/files/put-small.ts'
import { FragmentStore } from '../../../src/peer/store/index.ts'
import { isHousePartyError } from '../../../src/shared/errors.ts'
import { silentLogger } from '../../../src/shared/logger.ts'

const coding = { k: 2, m: 1, stripeBytes: 4096 }
const version = '0000000001000-0000abcd'
const hash = 'a'.repeat(64)
const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true, maxRetries: 5 })
})

async function openStore(dir?: string): Promise<{ store: FragmentStore; dir: string }> {
  const d = dir ?? (await mkdtemp(join(tmpdir(), 'hp-inline-')))
  if (!dir) dirs.push(d)
  const store = new FragmentStore(d, silentLogger())
  await store.open()
  return { store, dir: d }
}

/** Fragment `index` of a file holding `data`, as a put sends it. */
function fragmentOf(data: Buffer, index: number) {
  const { shards, checksums } = codeWhole(data, coding)
  const checksum = checksums[index]
  const trailer = { size: data.length, hash, created: 1, digest: fragmentDigest(checksum ? [checksum.toString('hex')] : []) }
  return { shard: shards[index] as Buffer, checksum, trailer }
}

describe('small fragments kept inline', () => {
  it('keeps a fragment in its row, with no file, and serves, verifies and lists it after a restart', async () => {
    const { store, dir } = await openStore()
    const data = Buffer.from('hello, small world: '.repeat(50))
    const f = fragmentOf(data, 2)
    const key = { name: 'small/a', version, index: 2 }
    const held = await store.stash(key, coding, f.trailer, f.shard, f.checksum)
    assert.equal(held.digest, f.trailer.digest)
    assert.equal(held.bytes, f.shard.length)
    assert.deepEqual(await readdir(join(dir, 'fragments')), [], 'no fragment file or directory')
    await store.close()

    const again = await openStore(dir)
    assert.equal(again.store.has(key), true)
    assert.equal(again.store.bytes, f.shard.length)
    const reader = await again.store.openChunks(key)
    assert.deepEqual(await reader.read(0), f.shard)
    reader.close()
    const { stream, bytes } = await again.store.openRead(key, 0)
    const read: Buffer[] = []
    for await (const b of stream) read.push(b as Buffer)
    assert.equal(bytes, f.shard.length)
    assert.deepEqual(Buffer.concat(read), f.shard)
    assert.equal(await again.store.verify(key), true)
    assert.equal(await again.store.drop('small/a', version), 1)
    assert.equal(again.store.has(key), false)
    await again.store.close()
    const third = await openStore(dir)
    assert.equal(third.store.count, 0, 'the drop is durable')
    await third.store.close()
  })

  it('refuses bytes that fail their checksum, a digest other than the trailer, and a file of more than one stripe', async () => {
    const { store } = await openStore()
    const f = fragmentOf(Buffer.alloc(3000, 9), 0)
    const key = { name: 'bad', version, index: 0 }
    const damaged = Buffer.from(f.shard)
    damaged[10] = (damaged[10] as number) ^ 1
    const code = (err: unknown): string => (isHousePartyError(err) ? err.code : String(err))
    await assert.rejects(store.stash(key, coding, f.trailer, damaged, f.checksum), (err) => code(err) === 'ERR_CHECKSUM_MISMATCH')
    await assert.rejects(
      store.stash(key, coding, { ...f.trailer, digest: 'b'.repeat(64) }, f.shard, f.checksum),
      (err) => code(err) === 'ERR_CHECKSUM_MISMATCH',
    )
    await assert.rejects(store.stash(key, coding, { ...f.trailer, size: 5000 }, f.shard, f.checksum), (err) => code(err) === 'ERR_PROTOCOL')
    await assert.rejects(store.stash(key, coding, f.trailer, f.shard.subarray(8), f.checksum), (err) => code(err) === 'ERR_PROTOCOL')
    assert.equal(store.count, 0)
    await store.close()
  })

  it('walks every fragment a page of rows at a time', async () => {
    const { store } = await openStore()
    const names = Array.from({ length: 1100 }, (_, i) => `walk/${i}`)
    await Promise.all(
      names.map((name) => {
        const f = fragmentOf(Buffer.from(name), 0)
        return store.stash({ name, version, index: 0 }, coding, f.trailer, f.shard, f.checksum)
      }),
    )
    const seen: string[] = []
    for await (const held of store.walk(256)) seen.push(held.name)
    assert.deepEqual(seen.sort(), [...names].sort())
    await store.close()
  })

  it('keeps an empty file as a fragment of no bytes', async () => {
    const { store } = await openStore()
    const f = fragmentOf(Buffer.alloc(0), 1)
    const key = { name: 'empty', version, index: 1 }
    const held = await store.stash(key, coding, f.trailer, f.shard, f.checksum)
    assert.equal(held.bytes, 0)
    assert.equal(await store.verify(key), true)
    await store.close()
  })

  it('opens a fragment table of the layout before inline fragments and fingerprints, adds both columns and keeps its rows', async () => {
    const { store, dir } = await openStore()
    const f = fragmentOf(Buffer.alloc(100, 1), 0)
    await store.stash({ name: 'x', version, index: 0 }, coding, f.trailer, f.shard, f.checksum)
    await store.close()
    // Back to schema 1: no data column and no fingerprints (its rows are of fragments in files, so this one is turned into such a row).
    const db = new DatabaseSync(join(dir, 'fragments.db'))
    db.exec(`CREATE TABLE old AS SELECT key, name, version, idx, size, bytes, digest, hash, created, stored, k, m, stripe, chunks FROM fragments;
      DROP TABLE fragments; ALTER TABLE old RENAME TO fragments; UPDATE meta SET value = '1' WHERE key = 'schema'`)
    db.close()
    const again = await openStore(dir)
    assert.equal(again.store.count, 1)
    const f2 = fragmentOf(Buffer.alloc(200, 2), 0)
    await again.store.stash({ name: 'y', version, index: 0 }, coding, f2.trailer, f2.shard, f2.checksum)
    assert.equal(again.store.count, 2)
    // The migrated row got its fingerprint: the census digest of the whole ring counts both.
    const ring = { from: '0'.repeat(16), to: '0'.repeat(16) }
    assert.match(again.store.digestsIn(ring, 1).encode()[0] as string, /\.2$/)
    await again.store.close()
    const check = new DatabaseSync(join(dir, 'fragments.db'))
    assert.equal((check.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string }).value, '7')
    check.close()
  })

  it('keeps the bytes in a blob row that goes with its fragment, and serves rows of schema 6 that kept them in their own row', async () => {
    const { store, dir } = await openStore()
    /** Stashes fragment `index` of a file of 1,500 bytes of `fill` into `into`; returns the fragment's bytes. */
    const stash = async (into: FragmentStore, name: string, fill: number, index = 0): Promise<Buffer> => {
      const f = fragmentOf(Buffer.alloc(1500, fill), index)
      await into.stash({ name, version, index }, coding, f.trailer, f.shard, f.checksum)
      return f.shard
    }
    const old = await stash(store, 'old', 1)
    await store.close()
    // Back to schema 6: the bytes in the fragment's own row, no blob column, no blobs.
    const db = new DatabaseSync(join(dir, 'fragments.db'))
    db.exec(`CREATE TABLE six (key TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL, idx INTEGER NOT NULL, size INTEGER NOT NULL,
        bytes INTEGER NOT NULL, digest TEXT NOT NULL, hash TEXT NOT NULL, created INTEGER NOT NULL, stored INTEGER NOT NULL,
        k INTEGER NOT NULL, m INTEGER NOT NULL, stripe INTEGER NOT NULL, chunks TEXT NOT NULL, data BLOB, print TEXT NOT NULL, seal BLOB) WITHOUT ROWID;
      INSERT INTO six SELECT key, name, version, idx, size, bytes, digest, hash, created, stored, k, m, stripe, chunks,
        (SELECT data FROM blobs WHERE id = blob), print, seal FROM fragments;
      DROP TABLE fragments; DROP TABLE blobs; ALTER TABLE six RENAME TO fragments; UPDATE meta SET value = '6' WHERE key = 'schema'`)
    db.close()

    const again = (await openStore(dir)).store
    const read = async (name: string, index = 0): Promise<Buffer> => {
      const reader = await again.openChunks({ name, version, index })
      try {
        return await reader.read(0)
      } finally {
        reader.close()
      }
    }
    assert.deepEqual(await read('old'), old, 'a row of schema 6 serves the bytes it kept')
    assert.equal(await again.verify({ name: 'old', version, index: 0 }), true)
    const a = await stash(again, 'a', 3)
    await stash(again, 'b', 4, 1)
    // The same fragment sent again (a retried put): its row is replaced, and so is its blob.
    assert.deepEqual(await stash(again, 'a', 3), a)
    assert.deepEqual(await read('a'), a)
    await again.drop('b', version)
    await again.drop('old', version)
    await new Promise((resolve) => setImmediate(resolve))
    const check = new DatabaseSync(join(dir, 'fragments.db'), { readOnly: true })
    assert.equal(
      (check.prepare('SELECT COUNT(*) AS n FROM blobs').get() as { n: number }).n,
      1,
      "one blob left: a's; b's went with its row, and a's first went when its row was replaced",
    )
    assert.equal((check.prepare('SELECT COUNT(*) AS n FROM fragments WHERE data IS NOT NULL').get() as { n: number }).n, 0)
    check.close()
    await again.close()
  })

  it('a start reads the census digests and totals from the bucket rows, and they match a count of every row', async () => {
    const { store, dir } = await openStore()
    const later = '0000000002000-0000abcd'
    const stash = async (name: string, at: string, index: number): Promise<void> => {
      const f = fragmentOf(Buffer.from(`${name} ${at} `.repeat(10 + name.length)), index)
      await store.stash({ name, version: at, index }, coding, f.trailer, f.shard, f.checksum)
    }
    // Some names with two fragments here, some with two versions: files held counts each name once.
    for (let i = 0; i < 40; i++) {
      await stash(`many/${i}`, version, i % 3)
      if (i % 5 === 0) await stash(`many/${i}`, version, (i + 1) % 3)
      if (i % 8 === 0) await stash(`many/${i}`, later, 0)
    }
    for (let i = 0; i < 40; i += 7) await store.drop(`many/${i}`, version)
    for (let i = 5; i < 40; i += 10) await store.drop(`many/${i}`, version, i % 3)
    // Drops commit at the end of the event loop's turn (group commit): read the table after it.
    await new Promise((resolve) => setImmediate(resolve))
    const rows = new DatabaseSync(join(dir, 'fragments.db'), { readOnly: true })
    const files = (rows.prepare('SELECT COUNT(DISTINCT name) AS n FROM fragments').get() as { n: number }).n
    rows.close()
    assert.equal(store.stats().files, files)
    const whole = { from: '0'.repeat(64), to: '0'.repeat(64) }
    const totals = (s: FragmentStore) => ({ count: s.count, bytes: s.bytes, files: s.stats().files, parts: s.digestsIn(whole, 64).encode() })
    const expected = totals(store)
    // No clean close: the bucket rows were committed with the fragments' rows, as a SIGKILL would leave them.
    const kept = await openStore(dir)
    assert.deepEqual(totals(kept.store), expected)
    await kept.store.close()
    await store.close().catch(() => undefined)
    // Forget the bucket rows (a table of the earlier schema): the next start counts every row once, to the same totals.
    const db = new DatabaseSync(join(dir, 'fragments.db'))
    db.exec("DELETE FROM buckets; DELETE FROM meta WHERE key = 'buckets'")
    db.close()
    const counted = await openStore(dir)
    assert.deepEqual(totals(counted.store), expected)
    await counted.store.close()
  })
})
