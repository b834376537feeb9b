import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { CallBatcher, ConnectionPool, call, withBytes } from '../../../src/peer/net/index.ts'
import { MAX_BATCH_BYTES, PintReplies } from '../../../src/peer/protocol/index.ts'
import type { FragmentStore } from '../../../src/peer/store/index.ts'
import type { TrackerStore } from '../../../src/peer/tracker/index.ts'
import { systemClock } from '../../../src/shared/clock.ts'
import { isHousePartyError } from '../../../src/shared/errors.ts'
import { type ServedHolder, servedHolder, stashOf as stashOfVersion } from '../../helpers/holder.ts'
import { testKey as key } from '../../helpers/pint.ts'
import { aRecord } from '../../helpers/records.ts'

const dial = { key, clock: systemClock, connectTimeoutMs: 2000, idleTimeoutMs: 5000 }
const coding = { k: 2, m: 1, stripeBytes: 4 * 1024 * 1024 }
const version = '0000000001000-0000abcd'
const hex = (c: string): string => c.repeat(64)
const stashOf = (name: string, data: Buffer) => stashOfVersion(name, version, data)

describe('a batch served by a holder and tracker (real TCP, real stores)', () => {
  let holder: ServedHolder
  let store: FragmentStore
  let trackers: TrackerStore
  let address = ''
  const served: string[] = []
  before(async () => {
    holder = await servedHolder({ served: (op) => served.push(op) })
    ;({ store, trackers, address } = holder)
  })
  after(() => holder.close())

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
    const fetchOf = (name: string) => batcher.callForBytes(address, { op: 'fetch', name, version, index: 0, fromChunk: 0 }, PintReplies.fetch, 4096)
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

  it('a where that asks for a fragment brings the one this peer holds of the recorded version, batched or alone', async () => {
    const s = stashOf('w/small', Buffer.alloc(2048, 9))
    await new CallBatcher({ dial }).call(address, s.body, PintReplies.stash, undefined, s.chunk)
    const fragments = [0, 1, 2].map((index) => ({ index, holder: `00000000000000a${index}`, digest: index === 0 ? s.body.trailer.digest : hex(String(index)) }))
    const record = aRecord({ name: 'w/small', version, size: 4096, coding, fragments })
    await new CallBatcher({ dial }).call(address, { op: 'watch', record }, PintReplies.watch)
    const batcher = new CallBatcher({ dial, inFlight: 1 })
    const ask = (name: string, fragmentUpTo: number) => batcher.callForBytes(address, { op: 'where', name, fragmentUpTo }, PintReplies.where, fragmentUpTo)
    served.length = 0
    const [brought, tooSmall, unknown] = await Promise.all([ask('w/small', 4096), ask('w/small', 1024), ask('w/unknown', 4096)])
    assert.deepEqual(served, ['batch', 'where', 'where', 'where'])
    assert.equal(brought.reply.record?.version, version)
    assert.equal(brought.reply.fragment?.index, 0)
    assert.equal(brought.reply.fragment?.manifest.name, 'w/small')
    assert.ok(brought.data.equals(s.chunk.data), 'the fragment follows the reply')
    assert.equal(tooSmall.reply.fragment, undefined, 'none larger than asked for')
    assert.equal(tooSmall.data.length, 0)
    assert.equal(unknown.reply.record, null)
    // Alone, then on the same kept connection a where that did not ask: no bytes after its reply.
    const pool = new ConnectionPool({ idleMs: 4000 })
    try {
      const alone = await call(
        address,
        { op: 'where', name: 'w/small', fragmentUpTo: 4096 },
        PintReplies.where,
        { ...dial, pool },
        {
          afterReply: (reply, channel) => withBytes('where', reply, channel, 4096),
        },
      )
      assert.ok(alone.data.equals(s.chunk.data))
      const plain = await call(address, { op: 'where', name: 'w/small' }, PintReplies.where, { ...dial, pool })
      assert.equal(plain.fragment, undefined)
      assert.equal(plain.record?.version, version)
    } finally {
      pool.close()
    }
  })

  it('refuses a fetch that announces more bytes than the caller allows, without taking them as the next reply', async () => {
    const s = stashOf('f/big', Buffer.alloc(3072, 7))
    await new CallBatcher({ dial }).call(address, s.body, PintReplies.stash, undefined, s.chunk)
    const batcher = new CallBatcher({ dial, inFlight: 1 })
    const body = { op: 'fetch' as const, name: 'f/big', version, index: 0, fromChunk: 0 }
    const both = await Promise.allSettled([
      batcher.callForBytes(address, body, PintReplies.fetch, 100),
      batcher.callForBytes(address, body, PintReplies.fetch, 100),
    ])
    for (const r of both) assert.ok(r.status === 'rejected' && isHousePartyError(r.reason, 'ERR_PROTOCOL'))
  })
})
