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
  /** Per request served: whether its frames carried an HMAC. */
  const macs = new Map<string, boolean>()
  // Requires TLS, as a peer does by default.
  const server = testPintServer({
    plain: false,
    handshakeTimeoutMs: 500,
    onReject: (reason) => rejected.push(reason),
    handler: async (req, channel) => {
      if (req.op !== 'where') return
      served.push(req.name)
      macs.set(req.name, channel.framesNeedMac)
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

  it('sends frames without an HMAC where both ends agreed, and with one to and from a peer of an earlier release', async () => {
    const ok = { ok: true, record: null }
    const earlier = { ...opts, tls: new PeerTls(key, { macFrames: true }) }
    assert.deepEqual(await call(`127.0.0.1:${port}`, { op: 'where', name: 'both-current' }, PintReplies.where, opts), ok)
    assert.deepEqual(await call(`127.0.0.1:${port}`, { op: 'where', name: 'client-earlier' }, PintReplies.where, earlier), ok)
    assert.equal(macs.get('both-current'), false)
    assert.equal(macs.get('client-earlier'), true)
    // A server of the earlier release: a current client falls back to frames with an HMAC.
    let serverSaw: boolean | undefined
    const old = testPintServer({
      plain: false,
      tls: new PeerTls(key, { macFrames: true }),
      handler: async (_req, channel) => {
        serverSaw = channel.framesNeedMac
        await channel.reply(ok)
      },
    })
    await old.listen('127.0.0.1', 0)
    try {
      assert.deepEqual(await call(`127.0.0.1:${old.port}`, { op: 'where', name: 'server-earlier' }, PintReplies.where, opts), ok)
      assert.equal(serverSaw, true)
    } finally {
      await old.close()
    }
  })

  it('still checks each frame of a peer of an earlier release: another key inside the party TLS is refused', async () => {
    const before = served.length
    const wrongFrames = { ...opts, key: Buffer.from('not the key the frames need'), tls: new PeerTls(key, { macFrames: true }) }
    await assert.rejects(call(`127.0.0.1:${port}`, { op: 'where', name: 'wrong-frames' }, PintReplies.where, wrongFrames))
    await waitFor('the rejection to be counted', () => rejected.includes('mac'), { timeoutMs: 5_000 })
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
