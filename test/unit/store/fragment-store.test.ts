import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { chunkChecksum, fragmentDigest, splitStripe } from '../../../src/peer/codec/index.ts'
import { FragmentStore } from '../../../src/peer/store/index.ts'
import { isHousePartyError } from '../../../src/shared/errors.ts'
import { silentLogger } from '../../../src/shared/logger.ts'

const coding = { k: 2, m: 1, stripeBytes: 4096 }
const version = '0000000001000-0000abcd'
const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

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
    const again = new FragmentStore(dir, silentLogger())
    assert.deepEqual(await again.open(), { fragments: 1, cleaned: 0 })
    assert.equal(again.list()[0]?.digest, digest)
    assert.deepEqual(again.stats(), { files: 1, fragments: 1, bytes: 2048 + 2048 + 904 })
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

  it('cleans what a crash leaves: temporary files, fragments without a manifest, wrong sizes', async () => {
    const dir = await freshDir()
    const store = new FragmentStore(dir, silentLogger())
    await store.open()
    await writeFragment(store, 'keep', 5000)
    await writeFragment(store, 'truncate', 5000)
    await writeFragment(store, 'orphan', 5000)
    await writeFile(join(dir, 'tmp', 'deadbeef.frag'), 'half a fragment')
    const files = async (): Promise<string[]> => {
      const out: string[] = []
      for (const a of await readdir(join(dir, 'fragments')))
        for (const b of await readdir(join(dir, 'fragments', a)))
          for (const f of await readdir(join(dir, 'fragments', a, b))) out.push(join(dir, 'fragments', a, b, f))
      return out
    }
    const manifests = (await files()).filter((f) => f.endsWith('.json'))
    const named = await Promise.all(manifests.map(async (m) => ({ m, name: (JSON.parse(await readFile(m, 'utf8')) as { name: string }).name })))
    const manifestOf = (name: string): string => named.find((n) => n.name === name)?.m as string
    // Simulate the crashes: a manifest lost before its rename, a fragment cut short.
    await rm(manifestOf('orphan'))
    await writeFile(manifestOf('truncate').replace(/\.json$/, '.frag'), 'short')
    const again = new FragmentStore(dir, silentLogger())
    const { fragments, cleaned } = await again.open()
    assert.equal(fragments, 1)
    assert.equal(cleaned, 2)
    assert.deepEqual(await readdir(join(dir, 'tmp')), [])
    assert.deepEqual(
      again.list().map((f) => f.name),
      ['keep'],
    )
  })

  it('drops the fragments of one version', async () => {
    const store = new FragmentStore(await freshDir(), silentLogger())
    await store.open()
    await writeFragment(store, 'gone', 100)
    assert.equal(await store.drop('gone', version), 1)
    assert.equal(await store.drop('gone', version), 0)
    await assert.rejects(store.openRead({ name: 'gone', version, index: 0 }, 0), (e) => isHousePartyError(e, 'ERR_NOT_FOUND'))
  })
})
