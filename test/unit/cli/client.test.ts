import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, describe, it } from 'node:test'
import { PartyApi } from '../../../src/cli/client.ts'

/** A stand-in peer API on 127.0.0.1 that answers with `handle`. */
async function stubPeer(
  handle: (path: string) => { status: number; body: unknown; headers?: Record<string, string> },
): Promise<{ server: Server; port: number; hits: string[] }> {
  const hits: string[] = []
  const server = createServer((req, res) => {
    hits.push(req.url ?? '')
    const { status, body, headers = {} } = handle(req.url ?? '')
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body))
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  after(() => new Promise<void>((done) => server.close(() => done())))
  return { server, port: (server.address() as AddressInfo).port, hits }
}

const leaving = { status: 503, body: { error: { code: 'ERR_LEAVING', message: 'this peer is leaving' } }, headers: { 'retry-after': '1' } }

describe('the CLI meeting a peer that is leaving', () => {
  it('reads the file through another guest the leaving peer lists', async () => {
    const other = await stubPeer(() => ({ status: 200, body: { from: 'other' } }))
    const gone = await stubPeer((path) =>
      path === '/guests'
        ? {
            status: 200,
            body: {
              guests: [
                { id: 'a', address: '127.0.0.1:1', apiPort: gone.port, self: true },
                { id: 'b', address: '127.0.0.1:2', apiPort: other.port, self: false },
              ],
            },
          }
        : leaving,
    )
    const api = new PartyApi({ base: `http://127.0.0.1:${gone.port}`, label: 'gone', token: undefined })
    const res = await api.request('/files/x')
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { from: 'other' })
    assert.deepEqual(other.hits, ['/files/x'])
  })

  it('asks the same address again after Retry-After when no other guest answers (behind a Service, another pod does)', async () => {
    let calls = 0
    const service = await stubPeer((path) => {
      if (path === '/guests') return { status: 200, body: { guests: [] } }
      return ++calls === 1 ? leaving : { status: 200, body: { from: 'next pod' } }
    })
    const api = new PartyApi({ base: `http://127.0.0.1:${service.port}`, label: 'svc', token: undefined })
    const res = await api.request('/files/x')
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { from: 'next pod' })
  })

  it('does not replay a put, and hands other errors back as they came', async () => {
    const peer = await stubPeer(() => leaving)
    const api = new PartyApi({ base: `http://127.0.0.1:${peer.port}`, label: 'p', token: undefined })
    const put = await api.request('/files/x', { method: 'PUT', body: 'data' })
    assert.equal(put.status, 503)
    assert.equal(peer.hits.length, 1)
    const busy = await stubPeer(() => ({ status: 503, body: { error: { code: 'ERR_NOT_ENOUGH_PEERS', message: 'few' } } }))
    const res = await new PartyApi({ base: `http://127.0.0.1:${busy.port}`, label: 'b', token: undefined }).request('/files/y')
    assert.equal(res.status, 503)
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'ERR_NOT_ENOUGH_PEERS')
    assert.equal(busy.hits.length, 1)
  })
})
