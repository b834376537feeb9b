import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { chunkChecksum, fragmentDigest } from '../../../src/peer/codec/index.ts'
import { CallBatcher, ConnectionPool, call, type PintServer } from '../../../src/peer/net/index.ts'
import { type BatchedCall, MAX_BATCH_BYTES, PintReplies } from '../../../src/peer/protocol/index.ts'
import { FragmentStore } from '../../../src/peer/store/index.ts'
import { TrackerStore } from '../../../src/peer/tracker/index.ts'
import { pintRouter } from '../../../src/peer/transfer/index.ts'
import { systemClock } from '../../../src/shared/clock.ts'
import { isHousePartyError } from '../../../src/shared/errors.ts'
import { silentLogger } from '../../../src/shared/logger.ts'
import { testKey as key, testPintServer } from '../../helpers/pint.ts'
import { aRecord } from '../../helpers/records.ts'

const dial = { key, clock: systemClock, connectTimeoutMs: 2000, idleTimeoutMs: 5000 }
const coding = { k: 2, m: 1, stripeBytes: 4 * 1024 * 1024 }
const version = '0000000001000-0000abcd'

/** A stash of `data` as fragment 0 of `name`, with the bytes that follow it. */
function stashOf(name: string, data: Buffer): { body: Extract<BatchedCall, { op: 'stash' }>; chunk: { data: Buffer; checksum: Buffer } } {
  const checksum = chunkChecksum(data)
  const trailer = { size: data.length * 2, hash: 'a'.repeat(64), created: 1, digest: fragmentDigest([checksum.toString('hex')]) }
  return { body: { op: 'stash', name, version, index: 0, coding, trailer }, chunk: { data, checksum } }
}

describe('a batch served by a holder and tracker (real TCP, real stores)', () => {
  let dir = ''
  let store: FragmentStore
  let trackers: TrackerStore
  let server: PintServer
  let address = ''
  const served: string[] = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hp-batch-'))
    store = new FragmentStore(join(dir, 'store'), silentLogger())
    await store.open()
    trackers = new TrackerStore(join(dir, 'trackers'), silentLogger())
    await trackers.open()
    const events = { received: () => undefined, sent: () => undefined }
    server = testPintServer({
      handler: pintRouter({ store, trackers, events, served: (op) => served.push(op) }),
    })
    await server.listen('127.0.0.1', 0)
    address = `127.0.0.1:${server.port}`
  })
  after(async () => {
    await server.close()
    await trackers.close()
    await store.close()
    await rm(dir, { recursive: true, force: true, maxRetries: 5 })
  })

  it('stores every stash, records every watch and answers every where, each as it would alone', async () => {
    const batcher = new CallBatcher({ dial, inFlight: 1 })
    const stashes = [1, 2, 3].map((i) => stashOf(`b/${i}`, Buffer.alloc(1000 * i, i)))
    const record = aRecord({ name: 'b/record' })
    const [s1, s2, s3, watched, where] = await Promise.all([
      ...stashes.map((s) => batcher.call(address, s.body, PintReplies.stash, undefined, s.chunk)),
      batcher.call(address, { op: 'watch', record }, PintReplies.watch),
      batcher.call(address, { op: 'where', name: 'b/nothing' }, PintReplies.where),
    ])
    assert.deepEqual(
      [s1, s2, s3].map((r) => (r as { bytes: number }).bytes),
      [1000, 2000, 3000],
    )
    for (const [i, s] of stashes.entries()) assert.equal(store.has({ name: s.body.name, version, index: 0 }), true, `stash ${i} kept`)
    assert.equal((watched as { accepted: boolean }).accepted, true)
    assert.equal(trackers.get('b/record')?.version, record.version)
    assert.deepEqual(where, { ok: true, record: null, pending: null })
  })

  it(`refuses a batch whose chunks exceed ${MAX_BATCH_BYTES} bytes before reading them, and stores none of it`, async () => {
    const half = MAX_BATCH_BYTES / 2 + 1024
    const big = [stashOf('big/1', Buffer.alloc(half, 1)), stashOf('big/2', Buffer.alloc(half, 2))]
    const sent = call(address, { op: 'batch', calls: big.map((s) => s.body) }, PintReplies.batch, dial, {
      payload: async (channel) => {
        for (const s of big) await channel.writeChunk(s.chunk.data, s.chunk.checksum)
      },
    })
    await assert.rejects(sent, (e) => isHousePartyError(e, 'ERR_PROTOCOL') || isHousePartyError(e, 'ERR_TRANSFER_FAILED'))
    for (const s of big) assert.equal(store.has({ name: s.body.name, version, index: 0 }), false)
  })

  it('fetches whole fragments in one batch: each its own bytes, a missing one failing alone, the connection fit for the next', async () => {
    const stashes = [1, 2, 3].map((i) => stashOf(`f/${i}`, Buffer.alloc(1024 * i, 10 + i)))
    const storing = new CallBatcher({ dial, inFlight: 1 })
    await Promise.all(stashes.map((s) => storing.call(address, s.body, PintReplies.stash, undefined, s.chunk)))
    const pool = new ConnectionPool({ idleMs: 4000 })
    const batcher = new CallBatcher({ dial: { ...dial, pool }, inFlight: 1 })
    const fetchOf = (name: string) => batcher.fetch(address, { op: 'fetch', name, version, index: 0, fromChunk: 0 }, PintReplies.fetch, 4096)
    served.length = 0
    const got = await Promise.allSettled([...stashes.map((s) => fetchOf(s.body.name)), fetchOf('f/missing'), fetchOf('f/2')])
    // Made in one turn of the event loop, the five leave together.
    assert.deepEqual(served, ['batch', 'fetch', 'fetch', 'fetch', 'fetch', 'fetch'])
    for (const [i, s] of stashes.entries()) {
      const r = got[i] as PromiseFulfilledResult<{ reply: { bytes: number; manifest: { name: string } }; data: Buffer }>
      assert.equal(r.status, 'fulfilled')
      assert.equal(r.value.reply.manifest.name, s.body.name)
      assert.ok(r.value.data.equals(s.chunk.data), `fetch ${i} carries its own fragment's bytes`)
    }
    assert.equal(got[3]?.status, 'rejected')
    assert.ok(isHousePartyError((got[3] as PromiseRejectedResult).reason, 'ERR_NOT_FOUND'))
    assert.ok((got[4] as PromiseFulfilledResult<{ data: Buffer }>).value.data.equals(stashes[1]?.chunk.data as Buffer))
    // The bytes after the reply were read exactly: the kept connection carries the next call.
    const again = await fetchOf('f/3')
    assert.ok(again.data.equals(stashes[2]?.chunk.data as Buffer))
    pool.close()
  })

  it('refuses a fetch that announces more bytes than the caller allows, without taking them as the next reply', async () => {
    const s = stashOf('f/big', Buffer.alloc(3072, 7))
    await new CallBatcher({ dial }).call(address, s.body, PintReplies.stash, undefined, s.chunk)
    const batcher = new CallBatcher({ dial, inFlight: 1 })
    const body = { op: 'fetch' as const, name: 'f/big', version, index: 0, fromChunk: 0 }
    const both = await Promise.allSettled([batcher.fetch(address, body, PintReplies.fetch, 100), batcher.fetch(address, body, PintReplies.fetch, 100)])
    for (const r of both) assert.ok(r.status === 'rejected' && isHousePartyError(r.reason, 'ERR_PROTOCOL'))
  })
})
