import assert from 'node:assert/strict'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { call, PeerTls, type TcpRejectReason } from '../../../src/peer/net/index.ts'
import { PintReplies } from '../../../src/peer/protocol/index.ts'
import { systemClock } from '../../../src/shared/clock.ts'
import { testKey as key, testPintServer } from '../../helpers/pint.ts'
import { waitFor } from '../../helpers/wait.ts'

/** A TCP proxy that forwards to `port` and keeps every byte the client sent. */
async function recordingProxy(port: number): Promise<{ server: Server; port: number; sent: () => Buffer }> {
  const chunks: Buffer[] = []
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1')
    client.on('data', (d: Buffer) => chunks.push(Buffer.from(d)))
    client.pipe(upstream).pipe(client)
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
  })
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  const address = server.address()
  return { server, port: typeof address === 'object' && address ? address.port : 0, sent: () => Buffer.concat(chunks) }
}

describe('peer traffic over TLS 1.3 keyed by the party', () => {
  const rejected: TcpRejectReason[] = []
  const served: string[] = []
  // Requires TLS, as a peer does by default.
  const server = testPintServer({
    plain: false,
    handshakeTimeoutMs: 500,
    onReject: (reason) => rejected.push(reason),
    handler: async (req, channel) => {
      if (req.op !== 'where') return
      served.push(req.name)
      await channel.reply({ ok: true, record: null })
    },
  })
  const tls = new PeerTls(key)
  const opts = { key, tls, clock: systemClock, connectTimeoutMs: 2000, idleTimeoutMs: 5000 }
  let port = 0
  before(async () => {
    await server.listen('127.0.0.1', 0)
    port = server.port
  })
  after(() => server.close())

  it('carries a call encrypted: nothing of the request shows on the wire', async () => {
    const proxy = await recordingProxy(port)
    try {
      const name = 'the-secret-name-of-a-known-file.txt'
      assert.deepEqual(await call(`127.0.0.1:${proxy.port}`, { op: 'where', name }, PintReplies.where, opts), { ok: true, record: null })
      assert.ok(served.includes(name))
      const wire = proxy.sent()
      assert.ok(wire.length > 100, 'bytes went through the proxy')
      assert.equal(wire[0], 0x16, 'a TLS handshake record first')
      assert.equal(wire.includes(Buffer.from('secret-name')), false)
      assert.equal(wire.includes(Buffer.from('where')), false)
    } finally {
      proxy.server.close()
    }
  })

  it('refuses at the handshake a peer with another party key, before reading any request', async () => {
    const before = served.length
    const stranger = { ...opts, key: Buffer.from('another party key entirely'), tls: new PeerTls(Buffer.from('another party key entirely')) }
    await assert.rejects(call(`127.0.0.1:${port}`, { op: 'where', name: 'x' }, PintReplies.where, stranger))
    await waitFor('the rejection to be counted', () => rejected.includes('tls'), { timeoutMs: 5_000 })
    assert.equal(served.length, before)
  })

  it('refuses a connection in clear when TLS is required', async () => {
    const plain = { key, clock: systemClock, connectTimeoutMs: 2000, idleTimeoutMs: 5000 }
    await assert.rejects(call(`127.0.0.1:${port}`, { op: 'where', name: 'y' }, PintReplies.where, plain))
    await waitFor('the rejection to be counted', () => rejected.includes('plain'), { timeoutMs: 5_000 })
  })

  it('cuts connections that never finish a handshake, and serves others meanwhile', async () => {
    // 200 connections that send a TLS record header and then nothing (a slowloris).
    const idle: Socket[] = []
    for (let i = 0; i < 200; i++) {
      const s = connect(port, '127.0.0.1')
      s.on('error', () => undefined)
      s.on('connect', () => s.write(Buffer.from([0x16, 0x03, 0x01])))
      idle.push(s)
    }
    assert.deepEqual(await call(`127.0.0.1:${port}`, { op: 'where', name: 'while-held' }, PintReplies.where, opts), { ok: true, record: null })
    await waitFor('every held connection to be cut', () => idle.every((s) => s.destroyed || s.readableEnded), { timeoutMs: 10_000 })
    for (const s of idle) s.destroy()
  })
})
