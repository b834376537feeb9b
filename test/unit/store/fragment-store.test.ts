import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { chunkChecksum, fragmentDigest, splitStripe } from '../../../src/peer/codec/index.ts'
import { ArcParts, ringPosition } from '../../../src/peer/ring/index.ts'
import { FragmentStore, nameHash } from '../../../src/peer/store/index.ts'
import { isHousePartyError } from '../../../src/shared/errors.ts'
import { silentLogger } from '../../../src/shared/logger.ts'

const coding = { k: 2, m: 1, stripeBytes: 4096 }
const version = '0000000001000-0000abcd'
const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true, maxRetries: 5 })
})

/** Every file under the data dir's fragments/ ending in `suffix`, sorted. */
async function fragmentFiles(dir: string, suffix = '.frag'): Promise<string[]> {
  const out: string[] = []
  const root = join(dir, 'fragments')
  for (const a of await readdir(root))
    for (const b of await readdir(join(root, a)).catch(() => []))
      for (const f of await readdir(join(root, a, b))) if (f.endsWith(suffix)) out.push(join(root, a, b, f))
  return out.sort()
}

async function freshDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hp-store-'))
  dirs.push(d)
  return d
}

/** Writes fragment 0 of a file of `size` bytes; returns its digest. */
async function writeFragment(store: FragmentStore, name: string, size: number): Promise<string> {
  const w = await store.beginWrite({ name, version, index: 0 }, coding)
  const chunks: string[] = []
  for (let at = 0; at < size; at += coding.stripeBytes) {
    const shard = splitStripe(Buffer.alloc(Math.min(coding.stripeBytes, size - at), 7), 2)[0] as Buffer
    const d = chunkChecksum(shard)
    chunks.push(d.toString('hex'))
    await w.append(shard, d)
  }
  const digest = fragmentDigest(chunks)
  await w.commit({ size, hash: 'a'.repeat(64), created: 1, digest })
  return digest
}

describe('fragment store', () => {
  it('makes a fragment visible only on commit, and serves it after a restart', async () => {
    const dir = await freshDir()
    const store = new FragmentStore(dir, silentLogger())
    await store.open()
    const w = await store.beginWrite({ name: 'a/b', version, index: 0 }, coding)
    assert.equal(store.has({ name: 'a/b', version, index: 0 }), false)
    await w.abort()
    const digest = await writeFragment(store, 'a/b', 10_000)
    const manifest = await store.manifest({ name: 'a/b', version, index: 0 })
    await store.close()
    const again = new FragmentStore(dir, silentLogger())
    assert.deepEqual(await again.open(), { fragments: 1, cleaned: 0 })
    assert.equal(again.list()[0]?.digest, digest)
    assert.deepEqual(again.stats(), { files: 1, fragments: 1, bytes: 2048 + 2048 + 904 })
    assert.deepEqual(await again.manifest({ name: 'a/b', version, index: 0 }), manifest, 'the manifest comes back from its row')
    assert.equal(await again.verify({ name: 'a/b', version, index: 0 }), true)
    // Its digest sits in the part of the ring where its name falls: a census of that part lists it.
    const ring = { from: '0'.repeat(16), to: '0'.repeat(16) }
    const part = new ArcParts(ring).partOf(ringPosition('a/b')) as number
    assert.deepEqual(
      [...again.digestsIn(ring).count].reduce((a, b) => a + b, 0),
      1,
    )
    assert.deepEqual(
      again.listIn(ring, [part]).map((f) => f.name),
      ['a/b'],
    )
    assert.deepEqual(again.listIn(ring, [(part + 1) % 256]), [])
    await again.close()
  })

  it('rejects a chunk whose checksum fails and a trailer that does not match', async () => {
    const store = new FragmentStore(await freshDir(), silentLogger())
    await store.open()
    const w = await store.beginWrite({ name: 'x', version, index: 0 }, coding)
    await assert.rejects(w.append(Buffer.alloc(8, 1), Buffer.alloc(4)), (e) => isHousePartyError(e, 'ERR_CHECKSUM_MISMATCH'))
    const data = Buffer.alloc(8, 1)
    await w.append(data, chunkChecksum(data))
    await assert.rejects(w.commit({ size: 16, hash: 'a'.repeat(64), created: 1, digest: 'b'.repeat(64) }), (e) => isHousePartyError(e, 'ERR_CHECKSUM_MISMATCH'))
    await assert.rejects(w.commit({ size: 999_999, hash: 'a'.repeat(64), created: 1, digest: 'b'.repeat(64) }), (e) => isHousePartyError(e, 'ERR_PROTOCOL'))
    await w.abort()
    assert.equal(store.list().length, 0)
  })

  it('cleans what a crash leaves: temporary files, and (in the background) a fragment file whose row was never committed', async () => {
    const dir = await freshDir()
    const store = new FragmentStore(dir, silentLogger())
    await store.open()
    await writeFragment(store, 'keep', 5000)
    await store.close()
    await writeFile(join(dir, 'tmp', 'deadbeef.frag'), 'half a fragment')
    // A crash between the rename into place and the commit of the row: the file is there, the row is not.
    const [kept] = await fragmentFiles(dir)
    const orphan = (kept as string).replace(/\.0\.frag$/, '.1.frag')
    await writeFile(orphan, 'a fragment whose row was never committed')
    const again = new FragmentStore(dir, silentLogger())
    assert.deepEqual(await again.open(), { fragments: 1, cleaned: 0 })
    assert.deepEqual(await readdir(join(dir, 'tmp')), [])
    await again.swept()
    assert.deepEqual(await fragmentFiles(dir), [kept])
    assert.deepEqual(
      again.list().map((f) => f.name),
      ['keep'],
    )
    await again.close()
  })

  it('converts a data dir of the earlier layout (a JSON manifest beside each fragment), dropping what a crash left', async () => {
    const dir = await freshDir()
    const store = new FragmentStore(dir, silentLogger())
    await store.open()
    for (const name of ['keep', 'truncate', 'orphan']) await writeFragment(store, name, 5000)
    const legacy = new Map<string, string>()
    for (const name of ['keep', 'truncate', 'orphan']) {
      const manifest = await store.manifest({ name, version, index: 0 })
      const file = (await fragmentFiles(dir)).find((f) => f.includes(nameHash(name))) as string
      legacy.set(name, file)
      await writeFile(file.replace(/\.frag$/, '.json'), JSON.stringify(manifest))
    }
    await store.close()
    for (const f of ['fragments.db', 'fragments.db-wal', 'fragments.db-shm']) await rm(join(dir, f), { force: true })
    // The earlier layout's crashes: a manifest lost before its rename, a fragment cut short.
    await rm((legacy.get('orphan') as string).replace(/\.frag$/, '.json'))
    await writeFile(legacy.get('truncate') as string, 'short')

    const converted = new FragmentStore(dir, silentLogger())
    assert.deepEqual(await converted.open(), { fragments: 1, cleaned: 2 })
    await converted.swept()
    assert.deepEqual(await fragmentFiles(dir, ''), [legacy.get('keep')], 'no JSON manifest and no leftover is left')
    assert.equal(await converted.verify({ name: 'keep', version, index: 0 }), true)
    await converted.close()
    const reopened = new FragmentStore(dir, silentLogger())
    assert.deepEqual(await reopened.open(), { fragments: 1, cleaned: 0 }, 'converted once')
    await reopened.close()
  })

  it('drops the fragments of one version', async () => {
    const store = new FragmentStore(await freshDir(), silentLogger())
    await store.open()
    await writeFragment(store, 'gone', 100)
    assert.equal(await store.drop('gone', version), 1)
    assert.equal(await store.drop('gone', version), 0)
    await assert.rejects(store.openRead({ name: 'gone', version, index: 0 }, 0), (e) => isHousePartyError(e, 'ERR_NOT_FOUND'))
    await store.close()
  })

  it('drops only a copy stored no later than asked: one written again since the census saw it stays', async () => {
    const store = new FragmentStore(await freshDir(), silentLogger())
    await store.open()
    await writeFragment(store, 'again', 100)
    const [held] = store.list()
    assert.ok(held)
    assert.equal(await store.drop('again', version, 0, held.stored - 1), 0, 'the copy here is newer than the one seen')
    assert.equal(store.count, 1)
    assert.equal(await store.drop('again', version, 0, held.stored), 1)
    await store.close()
  })
})
