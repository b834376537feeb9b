import assert from 'node:assert/strict'
import type { Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { ConnectionPool, call } from '../../../src/peer/net/index.ts'
import { PintReplies } from '../../../src/peer/protocol/index.ts'
import { systemClock } from '../../../src/shared/clock.ts'
import { isHousePartyError } from '../../../src/shared/errors.ts'
import { testKey as key, testPintServer } from '../../helpers/pint.ts'

describe('connections kept between calls', () => {
  const connections = new Set<Socket>()
  const served: string[] = []
  const server = testPintServer({
    handler: async (req, channel) => {
      connections.add(channel.socket)
      if (req.op !== 'where') return
      served.push(req.name)
      if (req.name === 'boom') throw new Error('handler exploded')
      await channel.reply({ ok: true, record: null })
    },
  })
  let address = ''
  const pool = new ConnectionPool({ idleMs: 2000 })
  before(async () => {
    await server.listen('127.0.0.1', 0)
    address = `127.0.0.1:${server.port}`
  })
  after(async () => {
    pool.close()
    await server.close()
  })
  const opts = { key, clock: systemClock, connectTimeoutMs: 2000, idleTimeoutMs: 5000, pool }

  it('carries one call after another on one connection', async () => {
    connections.clear()
    for (let i = 0; i < 5; i++) assert.deepEqual(await call(address, { op: 'where', name: `n${i}` }, PintReplies.where, opts), { ok: true, record: null })
    assert.equal(connections.size, 1)
    assert.equal(pool.size, 1)
  })

  it('opens one connection per call under way at once, and keeps them', async () => {
    connections.clear()
    const replies = await Promise.all(Array.from({ length: 4 }, (_, i) => call(address, { op: 'where', name: `c${i}` }, PintReplies.where, opts)))
    assert.equal(replies.length, 4)
    assert.ok(pool.size >= 1 && pool.size <= 4)
  })

  it('does not keep a connection whose call failed', async () => {
    pool.close()
    const fresh = new ConnectionPool({ idleMs: 2000 })
    const o = { ...opts, pool: fresh }
    await assert.rejects(call(address, { op: 'where', name: 'boom' }, PintReplies.where, o), (e) => isHousePartyError(e, 'ERR_INTERNAL'))
    assert.equal(fresh.size, 0)
    await call(address, { op: 'where', name: 'after-boom' }, PintReplies.where, o)
    assert.equal(fresh.size, 1)
    fresh.close()
  })

  it('sends again on a fresh connection when a kept one was cut while it waited', async () => {
    const fresh = new ConnectionPool({ idleMs: 2000 })
    const o = { ...opts, pool: fresh }
    connections.clear()
    await call(address, { op: 'where', name: 'first' }, PintReplies.where, o)
    // The server side cuts it (as its idle timeout would), and the client has not noticed yet.
    for (const s of connections) s.destroy()
    const reply = await call(address, { op: 'where', name: 'second' }, PintReplies.where, o)
    assert.deepEqual(reply, { ok: true, record: null })
    assert.equal(served.filter((n) => n === 'second').length, 1)
    fresh.close()
  })
})
