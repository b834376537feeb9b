import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { call, dial, type TcpRejectReason } from '../../../src/peer/net/index.ts'
import { PintReplies } from '../../../src/peer/protocol/index.ts'
import { systemClock } from '../../../src/shared/clock.ts'
import { isHousePartyError } from '../../../src/shared/errors.ts'
import { testKey as key, testPintServer } from '../../helpers/pint.ts'

describe('data-plane framing over real TCP', () => {
  const rejected: TcpRejectReason[] = []
  const server = testPintServer({
    idleTimeoutMs: 2000,
    onReject: (r) => rejected.push(r),
    handler: async (req, channel) => {
      if (req.op === 'where') {
        if (req.name === 'boom') throw new Error('handler exploded')
        await channel.reply({ ok: true, record: null })
      }
    },
  })
  let address = ''
  before(async () => {
    await server.listen('127.0.0.1', 0)
    address = `127.0.0.1:${server.port}`
  })
  after(() => server.close())
  const opts = { key, clock: systemClock, connectTimeoutMs: 1000, idleTimeoutMs: 2000 }

  it('carries an authenticated request and its reply', async () => {
    const reply = await call(address, { op: 'where', name: 'x' }, PintReplies.where, opts)
    assert.deepEqual(reply, { ok: true, record: null })
  })

  it('turns a handler failure into a coded error reply', async () => {
    await assert.rejects(call(address, { op: 'where', name: 'boom' }, PintReplies.where, opts), (e) => isHousePartyError(e, 'ERR_INTERNAL'))
  })

  it('refuses a wrong key and a malformed request, and counts them', async () => {
    const wrong = await dial(address, { op: 'where', name: 'x' }, { ...opts, key: Buffer.from('another key entirely!') })
    await assert.rejects(wrong.readReply(PintReplies.where))
    const bad = await dial(address, { op: 'where', name: '' }, opts)
    await assert.rejects(bad.readReply(PintReplies.where))
    assert.deepEqual(rejected.slice(-2), ['mac', 'schema'])
  })

  it('times out on a peer that accepts but never answers', async () => {
    const silent = testPintServer({
      idleTimeoutMs: 60_000,
      handler: () => new Promise(() => {}),
    })
    await silent.listen('127.0.0.1', 0)
    try {
      const started = performance.now()
      await assert.rejects(call(`127.0.0.1:${silent.port}`, { op: 'inventory' }, PintReplies.inventory, { ...opts, connectTimeoutMs: 200 }), (e) =>
        isHousePartyError(e),
      )
      assert.ok(performance.now() - started < 5000)
    } finally {
      await silent.close()
    }
  })
})
