import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { CallBatcher, ConnectionPool } from '../../../src/peer/net/index.ts'
import { type BatchedCall, PintReplies } from '../../../src/peer/protocol/index.ts'
import { systemClock } from '../../../src/shared/clock.ts'
import { isHousePartyError } from '../../../src/shared/errors.ts'
import { testKey as key, testPintServer } from '../../helpers/pint.ts'

const coding = { k: 2, m: 1, stripeBytes: 1024 * 1024 }
const hex = (c: string): string => c.repeat(64)

describe('calls to one guest gathered into batches', () => {
  /** Each request the server read: its op, and the calls it carried. */
  const requests: { op: string; calls: number }[] = []
  /** The bytes each stash brought, by name. */
  const stashed = new Map<string, string>()
  const answer = (c: BatchedCall, chunk?: Buffer): unknown => {
    if (c.op === 'where') return c.name === 'boom' ? { ok: false, error: { code: 'ERR_NOT_FOUND', message: 'no such thing' } } : { ok: true, record: null }
    if (c.op === 'stash') {
      stashed.set(c.name, chunk?.toString() ?? '')
      return { ok: true, digest: c.trailer.digest, bytes: chunk?.length ?? 0 }
    }
    return { ok: false, error: { code: 'ERR_INTERNAL', message: 'not in this test' } }
  }
  const server = testPintServer({
    handler: async (req, channel) => {
      const calls: BatchedCall[] = req.op === 'batch' ? req.calls : [req as BatchedCall]
      requests.push({ op: req.op, calls: calls.length })
      const chunks: (Buffer | undefined)[] = []
      for (const c of calls) if (c.op === 'stash') chunks.push((await channel.readChunk(1 << 20, (n) => Buffer.alloc(n)))?.data)
      const replies = calls.map((c) => answer(c, c.op === 'stash' ? chunks.shift() : undefined))
      if (req.op !== 'batch') {
        const only = replies[0] as { ok: boolean; error?: { code: string; message: string } }
        if (!only.ok) throw new Error(only.error?.message)
        return channel.reply(only)
      }
      await channel.reply({ ok: true, replies })
    },
  })
  const pool = new ConnectionPool({ idleMs: 2000 })
  let address = ''
  const batcher = new CallBatcher({ dial: { key, clock: systemClock, connectTimeoutMs: 2000, idleTimeoutMs: 5000, pool }, inFlight: 1 })
  before(async () => {
    await server.listen('127.0.0.1', 0)
    address = `127.0.0.1:${server.port}`
  })
  after(async () => {
    pool.close()
    await server.close()
  })

  it('sends calls made in one turn as one request, and answers each', async () => {
    requests.length = 0
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => batcher.call(address, { op: 'where', name: `n${i}` }, PintReplies.where)))
    assert.equal(replies.length, 10)
    for (const r of replies) assert.deepEqual(r, { ok: true, record: null })
    assert.deepEqual(requests, [{ op: 'batch', calls: 10 }])
  })

  it('sends a lone call as itself', async () => {
    requests.length = 0
    assert.deepEqual(await batcher.call(address, { op: 'where', name: 'alone' }, PintReplies.where), { ok: true, record: null })
    assert.deepEqual(requests, [{ op: 'where', calls: 1 }])
  })

  it('gathers the calls made while a request is under way into the next one', async () => {
    requests.length = 0
    const first = batcher.call(address, { op: 'where', name: 'first' }, PintReplies.where)
    // Made after the first request left: they wait for it, then leave together.
    await new Promise((resolve) => setImmediate(resolve))
    const rest = Array.from({ length: 5 }, (_, i) => batcher.call(address, { op: 'where', name: `later${i}` }, PintReplies.where))
    await Promise.all([first, ...rest])
    assert.deepEqual(requests, [
      { op: 'where', calls: 1 },
      { op: 'batch', calls: 5 },
    ])
  })

  it('fails only the call that failed', async () => {
    const results = await Promise.allSettled(['a', 'boom', 'b'].map((name) => batcher.call(address, { op: 'where', name }, PintReplies.where)))
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    )
    assert.ok(results[1]?.status === 'rejected' && isHousePartyError(results[1].reason, 'ERR_NOT_FOUND'))
  })

  it("carries each stash's bytes after the frame, in order", async () => {
    const stash = (name: string, text: string) =>
      batcher.call(
        address,
        {
          op: 'stash',
          name,
          version: '0001733380000000-0000abcd'.slice(3),
          index: 0,
          coding,
          trailer: { size: text.length, hash: hex('a'), created: 1, digest: hex('b') },
        },
        PintReplies.stash,
        undefined,
        { data: Buffer.from(text), checksum: text ? Buffer.alloc(4) : undefined },
      )
    const replies = await Promise.all([
      stash('s1', 'one'),
      batcher.call(address, { op: 'where', name: 'w' }, PintReplies.where),
      stash('s2', ''),
      stash('s3', 'three'),
    ])
    assert.equal(replies.length, 4)
    assert.deepEqual(Object.fromEntries(stashed), { s1: 'one', s2: '', s3: 'three' })
  })

  it('rejects at once a call whose signal aborts while it waits, and does not send it', async () => {
    requests.length = 0
    const controller = new AbortController()
    const waiting = batcher.call(address, { op: 'where', name: 'never' }, PintReplies.where, controller.signal)
    controller.abort()
    await assert.rejects(waiting, (e) => isHousePartyError(e, 'ERR_ABORTED'))
    await batcher.call(address, { op: 'where', name: 'after' }, PintReplies.where)
    assert.deepEqual(requests, [{ op: 'where', calls: 1 }])
  })

  it('rejects every call of a batch whose guest cannot be reached', async () => {
    const nobody = '127.0.0.1:1'
    const results = await Promise.allSettled([1, 2, 3].map((i) => batcher.call(nobody, { op: 'where', name: `x${i}` }, PintReplies.where)))
    for (const r of results) assert.ok(r.status === 'rejected' && isHousePartyError(r.reason, 'ERR_TRANSFER_FAILED'))
  })
})
