import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'
import { after, describe, it } from 'node:test'
import { ByteReader } from '../../../src/peer/net/index.ts'
import { isHousePartyError } from '../../../src/shared/errors.ts'
import { waitFor } from '../../helpers/wait.ts'

/** A server whose accepted sockets get a reader; `pauseOnConnect: false` takes the 'data' fallback path. */
async function serve(pauseOnConnect: boolean, highWater?: number): Promise<{ server: Server; accepted: Promise<{ socket: Socket; reader: ByteReader }> }> {
  let accept!: (v: { socket: Socket; reader: ByteReader }) => void
  const accepted = new Promise<{ socket: Socket; reader: ByteReader }>((resolve) => {
    accept = resolve
  })
  const server = createServer({ pauseOnConnect }, (socket) => accept({ socket, reader: new ByteReader(highWater).attach(socket) }))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, accepted }
}

function portOf(server: Server): number {
  return (server.address() as AddressInfo).port
}

describe('ByteReader over real sockets', () => {
  const servers: Server[] = []
  after(() => {
    for (const s of servers) s.close()
  })

  for (const pauseOnConnect of [true, false]) {
    it(`reads exact lengths across arbitrary write boundaries (${pauseOnConnect ? 'shared read buffer' : "'data' fallback"})`, async () => {
      const { server, accepted } = await serve(pauseOnConnect)
      servers.push(server)
      const payload = randomBytes(3 * 1024 * 1024 + 17)
      const client = connect({ host: '127.0.0.1', port: portOf(server) })
      await once(client, 'connect')
      // Odd write sizes, so reads straddle them.
      for (let at = 0; at < payload.length; ) {
        const n = Math.min(payload.length - at, 1 + ((at * 7919) % 200_000))
        client.write(payload.subarray(at, at + n))
        at += n
      }
      client.end()
      const { reader } = await accepted
      const sizes = [1, 4, 100_000, 512 * 1024, 7, 2 * 1024 * 1024]
      const got: Buffer[] = []
      let total = 0
      for (const n of sizes) {
        const take = Math.min(n, payload.length - total)
        if (take === 0) break
        if (got.length % 2 === 0) got.push(await reader.read(take))
        else {
          const into = Buffer.alloc(take)
          await reader.readInto(into)
          got.push(into)
        }
        total += take
      }
      got.push(await reader.read(payload.length - total))
      assert.ok(Buffer.concat(got).equals(payload))
      assert.equal(reader.consumed, payload.length)
      assert.equal(await reader.atEnd(), true)
    })
  }

  it('fails a read that the stream ends before, naming how far it got', async () => {
    const { server, accepted } = await serve(true)
    servers.push(server)
    const client = connect({ host: '127.0.0.1', port: portOf(server) })
    await once(client, 'connect')
    client.end(Buffer.alloc(10))
    const { reader } = await accepted
    await assert.rejects(reader.read(11), (e) => isHousePartyError(e, 'ERR_TRANSFER_FAILED') && /closed after 10 bytes, 1 short/.test(e.message))
  })

  it('stops reading once highWater bytes wait, so the sender is held back, and resumes as they are consumed', async () => {
    const highWater = 256 * 1024
    const { server, accepted } = await serve(true, highWater)
    servers.push(server)
    const client = connect({ host: '127.0.0.1', port: portOf(server) })
    await once(client, 'connect')
    const payload = randomBytes(64 * 1024 * 1024)
    let sent = 0
    const writer = (async () => {
      for (; sent < payload.length; sent += 1024 * 1024) {
        if (!client.write(payload.subarray(sent, sent + 1024 * 1024))) await once(client, 'drain')
      }
      client.end()
    })()
    const { reader } = await accepted
    // Nothing is read yet: the reader takes highWater bytes, the kernel buffers fill, and the sender must wait for 'drain'.
    await waitFor('the sender to wait for drain', () => client.writableNeedDrain, { timeoutMs: 5000 })
    // Had the reader kept reading, the whole 64 MiB would be out within this window (it takes tens of milliseconds);
    // held back, the sender gets no further than the kernel's socket buffers.
    await new Promise((r) => setTimeout(r, 300))
    assert.ok(sent < 32 * 1024 * 1024, `sender got ${sent} bytes out with no reader`)
    const got = await reader.read(payload.length)
    await writer
    assert.ok(got.equals(payload))
  })

  it('a client socket reads through onread', async () => {
    const payload = randomBytes(5 * 1024 * 1024)
    const server = createServer((socket) => socket.end(payload))
    servers.push(server)
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const reader = new ByteReader()
    const socket = connect({ host: '127.0.0.1', port: portOf(server), onread: reader.onread })
    reader.bind(socket)
    const got = Buffer.alloc(payload.length)
    await reader.readInto(got)
    assert.ok(got.equals(payload))
    assert.equal(await reader.atEnd(), true)
  })
})

describe('ByteReader without a socket', () => {
  it('keeps what waits unread when it sheds, and reads on after it as before', async () => {
    const reader = new ByteReader()
    const feed = (data: Buffer): void => {
      for (let at = 0; at < data.length; at += 1000) reader.onread.callback(Math.min(1000, data.length - at), data.subarray(at, at + 1000))
    }
    // A bulk transfer that arrives before it is read: it spills into big blocks.
    const bulk = randomBytes(3 * 1024 * 1024 + 5)
    feed(bulk)
    const head = await reader.read(1024 * 1024)
    reader.shed()
    assert.deepEqual(Buffer.concat([head, await reader.read(bulk.length - head.length)]), bulk, 'nothing unread was dropped')
    reader.shed()
    assert.equal(reader.idle, true)
    // Small messages after it, read as they come.
    for (let i = 0; i < 50; i++) {
      const message = randomBytes(100 + i * 37)
      feed(message)
      assert.deepEqual(await reader.read(message.length), message)
      reader.shed()
    }
    assert.equal(reader.consumed, bulk.length + Array.from({ length: 50 }, (_, i) => 100 + i * 37).reduce((a, b) => a + b, 0))
  })
})
