import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { chunkChecksum, fragmentDigest } from '../../../src/peer/codec/index.ts'
import { FragmentStore } from '../../../src/peer/store/index.ts'
import { silentLogger } from '../../../src/shared/logger.ts'

/**
 * Encryption at rest: what lies on the volume is ciphertext (files and
 * inline rows), what is read back is the plaintext, a chunk moved or
 * changed on disk fails, and rotating the key-encryption key re-wraps the
 * data key without touching a fragment.
 */
const coding = { k: 2, m: 1, stripeBytes: 8192 }
const version = '0000000001000-0000abcd'
const KEY_A = 'the-first-key-encryption-key-of-this-test'
const KEY_B = 'the-second-key-encryption-key-of-this-test'
const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true, maxRetries: 5 })
})

async function fresh(): Promise<{ dir: string; keyFile: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-at-rest-'))
  dirs.push(dir)
  const keyFile = join(dir, 'kek')
  await writeFile(keyFile, `${KEY_A}\n`)
  return { dir, keyFile }
}

/** A shard-sized chunk of readable text: plaintext a reader of the disk would recognise. */
const textChunk = (n: number, len: number): Buffer => Buffer.from(`secret-chunk-${n}-`.repeat(len).slice(0, len))

async function putFile(store: FragmentStore, name: string, chunks: Buffer[]): Promise<void> {
  const w = await store.beginWrite({ name, version, index: 0 }, coding)
  const sums: string[] = []
  for (const c of chunks) {
    const d = chunkChecksum(c)
    sums.push(d.toString('hex'))
    await w.append(c, d)
  }
  await w.commit({ size: chunks.reduce((a, c) => a + c.length, 0) * coding.k, hash: 'a'.repeat(64), created: 1, digest: fragmentDigest(sums) })
}

async function onlyFrag(dir: string): Promise<string> {
  const root = join(dir, 'fragments')
  for (const a of await readdir(root))
    for (const b of await readdir(join(root, a)).catch(() => []))
      for (const f of await readdir(join(root, a, b))) if (f.endsWith('.frag')) return join(root, a, b, f)
  throw new Error('no fragment file')
}

async function readAll(store: FragmentStore, name: string): Promise<Buffer> {
  const { stream } = await store.openRead({ name, version, index: 0 }, 0)
  const parts: Buffer[] = []
  for await (const p of stream) parts.push(p as Buffer)
  return Buffer.concat(parts)
}

describe('encryption at rest', () => {
  it('keeps ciphertext on disk and in the table, of the plaintext’s length; reads, streams and scrubs plaintext', async () => {
    const { dir, keyFile } = await fresh()
    const store = new FragmentStore(dir, silentLogger(), Date.now, keyFile)
    await store.open()
    const chunks = [textChunk(0, 4096), textChunk(1, 4096), textChunk(2, 1000)]
    await putFile(store, 'big', chunks)
    const onDisk = await readFile(await onlyFrag(dir))
    assert.equal(onDisk.length, 4096 + 4096 + 1000, 'no growth: tags live in the row')
    assert.equal(onDisk.includes('secret-chunk'), false, 'no plaintext in the fragment file')
    assert.deepEqual(await readAll(store, 'big'), Buffer.concat(chunks))
    assert.deepEqual((await readAll(store, 'big')).length, 9192)
    const reader = await store.openChunks({ name: 'big', version, index: 0 })
    assert.deepEqual(await reader.read(1), chunks[1])
    reader.close()
    assert.equal(await store.verify({ name: 'big', version, index: 0 }), true)
    // From chunk 2 on, as a resumed fetch asks.
    const { stream, bytes } = await store.openRead({ name: 'big', version, index: 0 }, 2)
    assert.equal(bytes, 1000)
    for await (const p of stream) assert.deepEqual(p, chunks[2])

    // A small fragment kept inline in the table: sealed there too.
    const small = textChunk(9, 600)
    const sum = chunkChecksum(small)
    await store.stash(
      { name: 'small', version, index: 0 },
      coding,
      { size: 1200, hash: 'b'.repeat(64), created: 1, digest: fragmentDigest([sum.toString('hex')]) },
      small,
      sum,
    )
    assert.deepEqual(await readAll(store, 'small'), small)
    await store.close()
    const db = await readFile(join(dir, 'fragments.db')).catch(() => Buffer.alloc(0))
    const wal = await readFile(join(dir, 'fragments.db-wal')).catch(() => Buffer.alloc(0))
    assert.equal(Buffer.concat([db, wal]).includes('secret-chunk-9'), false, 'no plaintext in the table')
  })

  it('fails a chunk changed or moved on disk (scrub finds it), and refuses to start without the key', async () => {
    const { dir, keyFile } = await fresh()
    let store = new FragmentStore(dir, silentLogger(), Date.now, keyFile)
    await store.open()
    await putFile(store, 'f', [textChunk(0, 4096), textChunk(1, 4096)])
    await store.close()
    const path = await onlyFrag(dir)
    const original = await readFile(path)
    // Swapped chunks: each is intact ciphertext, in the wrong place.
    await writeFile(path, Buffer.concat([original.subarray(4096), original.subarray(0, 4096)]))
    store = new FragmentStore(dir, silentLogger(), Date.now, keyFile)
    await store.open()
    assert.equal(await store.verify({ name: 'f', version, index: 0 }), false, 'swapped chunks fail')
    await assert.rejects(readAll(store, 'f'), /failed its check/)
    await store.close()
    const flipped = Buffer.from(original)
    flipped[100] = (flipped[100] as number) ^ 1
    await writeFile(path, flipped)
    store = new FragmentStore(dir, silentLogger(), Date.now, keyFile)
    await store.open()
    assert.equal(await store.verify({ name: 'f', version, index: 0 }), false, 'a flipped bit fails')
    await store.close()

    await assert.rejects(new FragmentStore(dir, silentLogger()).open(), /encrypted at rest .* start the peer with --at-rest-key-file/)
    const wrong = join(dir, 'wrong')
    await writeFile(wrong, `${KEY_B}\n`)
    await assert.rejects(new FragmentStore(dir, silentLogger(), Date.now, wrong).open(), /no key in .* unwraps this volume's data key/)
    await writeFile(wrong, 'too short\n')
    await assert.rejects(new FragmentStore(dir, silentLogger(), Date.now, wrong).open(), /at least 32 characters/)
  })

  it('rotates the key-encryption key by re-wrapping the data key: no fragment rewritten, every one still read', async () => {
    const { dir, keyFile } = await fresh()
    let store = new FragmentStore(dir, silentLogger(), Date.now, keyFile)
    await store.open()
    const chunks = [textChunk(0, 4096), textChunk(1, 1000)]
    await putFile(store, 'kept', chunks)
    await store.close()
    const frag = await onlyFrag(dir)
    const before = { bytes: await readFile(frag), mtime: (await stat(frag)).mtimeMs }
    const wrapped = await readFile(join(dir, 'at-rest-key.json'), 'utf8')
    // The new key first, the old one after it until every peer has restarted.
    await writeFile(keyFile, `${KEY_B}\n${KEY_A}\n`)
    store = new FragmentStore(dir, silentLogger(), Date.now, keyFile)
    await store.open()
    assert.deepEqual(await readAll(store, 'kept'), Buffer.concat(chunks))
    await store.close()
    assert.notEqual(await readFile(join(dir, 'at-rest-key.json'), 'utf8'), wrapped, 'the data key is wrapped anew')
    assert.deepEqual(await readFile(frag), before.bytes, 'the fragment is untouched')
    assert.equal((await stat(frag)).mtimeMs, before.mtime)
    // The old key can go now.
    await writeFile(keyFile, `${KEY_B}\n`)
    store = new FragmentStore(dir, silentLogger(), Date.now, keyFile)
    await store.open()
    assert.deepEqual(await readAll(store, 'kept'), Buffer.concat(chunks))
    await store.close()
  })

  it('reads fragments stored in clear before encryption was turned on, and seals only new ones', async () => {
    const { dir, keyFile } = await fresh()
    let store = new FragmentStore(dir, silentLogger())
    await store.open()
    await putFile(store, 'old', [textChunk(0, 2048)])
    await store.close()
    store = new FragmentStore(dir, silentLogger(), Date.now, keyFile)
    await store.open()
    assert.deepEqual(await readAll(store, 'old'), textChunk(0, 2048))
    await putFile(store, 'new', [textChunk(1, 2048)])
    assert.deepEqual(await readAll(store, 'new'), textChunk(1, 2048))
    assert.equal(await store.verify({ name: 'old', version, index: 0 }), true)
    await store.close()
  })
})
