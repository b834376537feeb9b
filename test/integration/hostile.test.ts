import assert from 'node:assert/strict'
import { createHmac, randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { readFile, writeFile } from 'node:fs/promises'
import { Agent, request } from 'node:http'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { MAGIC } from '../../src/peer/net/frame.ts'
import { keyMismatchNonce, open, seal } from '../../src/peer/net/index.ts'
import { guestsOf, metric, partiesForThisFile, startParty } from '../helpers/party.ts'
import { waitFor } from '../helpers/wait.ts'

const newParty = partiesForThisFile()

describe('hostile datagrams', () => {
  it('garbage, truncated, oversized, wrong-key, replayed and ill-formed datagrams are dropped and counted', async () => {
    const { party, cleanup } = await newParty(3)
    const before = await startParty(party, 3)
    const target = party.peer(1)
    const key = Buffer.from((await readFile(party.keyFile, 'utf8')).trim(), 'utf8')
    const sock = createSocket('udp4')
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()))
    const send = (b: Buffer): Promise<void> => new Promise((r) => sock.send(b, target.port, '127.0.0.1', () => r()))
    const dropped = (reason: string): Promise<number> => metric(target.api, 'houseparty_udp_datagrams_dropped_total', `reason="${reason}"`)
    const totalDropped = async (): Promise<number> => {
      const text = await (await fetch(`http://${target.api}/metrics`)).text()
      return text
        .split('\n')
        .filter((l) => l.startsWith('houseparty_udp_datagrams_dropped_total{'))
        .reduce((a, l) => a + Number(l.split(' ').at(-1)), 0)
    }
    // Sends in batches of 20 and waits until each batch is counted: a larger burst
    // can overflow the kernel's socket buffer before the peer reads it.
    let expected = await totalDropped()
    const hostile = async (count: number, make: (i: number) => Buffer): Promise<void> => {
      for (let i = 0; i < count; ) {
        const batch = Math.min(20, count - i)
        for (let b = 0; b < batch; b++) await send(make(i + b))
        i += batch
        expected += batch
        await waitFor(`${expected} datagrams counted as dropped`, async () => (await totalDropped()) >= expected)
      }
    }

    // A valid knock, captured so we can replay it.
    const knock = seal(key, Buffer.from(JSON.stringify({ type: 'knock', rid: 7, address: '127.0.0.1:1' })), Date.now())
    const sent = { garbage: 200, short: 50, large: 5, wrongKey: 50, replay: 50, stale: 20, json: 20, schema: 20, version: 10 }
    // Garbage never starts with the magic: random bytes that did (1 in 65,536) would be counted by their version byte instead.
    await hostile(sent.garbage, () => {
      const garbage = randomBytes(1 + Math.floor(Math.random() * 1400))
      if (garbage.length >= 2 && garbage.readUInt16BE(0) === MAGIC) garbage[0] = (garbage[0] as number) ^ 0xff
      return garbage
    })
    // Shorter than the smallest sealed datagram (header, tag and two bytes): longer ones fail authentication instead.
    await hostile(sent.short, () => knock.subarray(0, Math.floor(Math.random() * 38)))
    for (let i = 0; i < sent.large; i++) await hostile(1, () => Buffer.alloc(61_000, 1))
    const received: Buffer[] = []
    sock.on('message', (m) => received.push(m))
    const wrongKey = Array.from({ length: sent.wrongKey }, () => seal(randomBytes(32), Buffer.from('{"type":"ping"}'), Date.now()))
    await hostile(sent.wrongKey, (i) => wrongKey[i] as Buffer)
    // One notice for the lot (rate-limited per source), echoing the first datagram's nonce, smaller than it.
    const notice = await waitFor('a key-mismatch notice', () => received.find((m) => keyMismatchNonce(m)))
    assert.deepEqual(keyMismatchNonce(notice), (wrongKey[0] as Buffer).subarray(12, 20))
    assert.ok(notice.length < (wrongKey[0] as Buffer).length, 'a notice never amplifies')
    assert.equal(received.filter((m) => keyMismatchNonce(m)).length, 1, 'one notice per source per 5 s')
    const welcome = waitFor('the welcome', () => received.find((m) => typeof open(key, m) !== 'string'))
    await send(knock)
    await hostile(sent.replay, () => knock)
    await hostile(sent.stale, () => seal(key, Buffer.from('{"type":"viewRequest","rid":1}'), Date.now() - 3_600_000))
    await hostile(sent.json, () => seal(key, Buffer.from('{"type": nope'), Date.now()))
    await hostile(sent.schema, () => seal(key, Buffer.from(JSON.stringify({ type: 'prepare', rid: -1, view: 'x'.repeat(100) })), Date.now()))
    await hostile(sent.version, () => {
      const d = seal(key, Buffer.from('{"type":"viewRequest","rid":2}'), Date.now())
      d.writeUInt8(99, 2)
      // Re-sign so only the version is wrong.
      createHmac('sha256', key)
        .update(d.subarray(0, d.length - 32))
        .digest()
        .copy(d, d.length - 32)
      return d
    })
    // The one genuine knock gets a genuine welcome.
    const reply = await welcome
    const opened = open(key, reply)
    assert.ok(typeof opened !== 'string' && JSON.parse(opened.payload.toString()).type === 'welcome')
    sock.close()

    assert.equal(await dropped('replayed'), sent.replay)
    assert.equal(await dropped('stale'), sent.stale)
    assert.equal(await dropped('json'), sent.json)
    assert.equal(await dropped('schema'), sent.schema)
    assert.equal(await dropped('version'), sent.version)
    assert.equal(await dropped('too_large'), sent.large)
    assert.ok((await dropped('mac')) >= sent.wrongKey, 'wrong-key datagrams fail the MAC')
    const total = (await Promise.all(['too_short', 'magic', 'mac', 'version'].map(dropped))).reduce((a, b) => a + b, 0)
    assert.ok(total >= sent.garbage + sent.short + sent.wrongKey + sent.version, `garbage is counted (${total})`)

    // Still serving, still a guest, nobody removed.
    assert.ok(party.isRunning(1))
    const now = await guestsOf(target.api)
    assert.equal(now.epoch, before[1]?.epoch)
    assert.equal(now.guests.length, 3)

    // A peer started with another key hears why nobody lets it in; the door logs who knocks with a wrong key.
    const otherKey = join(party.peer(0).dataDir, '..', 'other.key')
    await writeFile(otherKey, `${randomBytes(32).toString('base64url')}\n`)
    await party.start(3, [1], ['--key-file', otherKey])
    await waitFor('the wrong-key peer to say its key is rejected', async () => /rejects this peer's party key/.test(await party.readLog(3)), {
      timeoutMs: 60_000,
      intervalMs: 200,
    })
    await waitFor(
      'the door to log the wrong-key source',
      async () => /fail authentication: a peer running with another party key/.test(await party.readLog(1)),
      {
        timeoutMs: 60_000,
        intervalMs: 200,
      },
    )
    assert.equal((await guestsOf(target.api)).guests.length, 3, 'and it is not let in')
    await cleanup()
  })

  it('10,000 requests with wrong tokens from one address: counted, held back, and a client with the token is never refused', async () => {
    const token = 'the-right-token-for-this-party'
    const { party, cleanup } = await newParty(3, ['--api-token', token])
    await startParty(party, 3)
    const target = party.peer(0)
    const [host, port] = target.api.split(':') as [string, string]
    const agent = (localAddress: string) => new Agent({ keepAlive: true, maxSockets: 32, localAddress })
    const get = (path: string, headers: Record<string, string>, via: Agent): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = request({ host, port: Number(port), path, headers, agent: via }, (res) => {
          res.resume()
          res.on('end', () => resolve(res.statusCode ?? 0))
        })
        req.on('error', reject)
        req.end()
      })
    const good = { authorization: `Bearer ${token}` }
    assert.equal(await get('/files', good, agent('127.0.0.1')), 200)
    // The attacker speaks from 127.0.0.2 (another loopback address); the good client from 127.0.0.1.
    const attacker = agent('127.0.0.2')
    const statuses = new Map<number, number>()
    let next = 0
    const guessing = Promise.all(
      Array.from({ length: 32 }, async () => {
        for (let i = next++; i < 10_000; i = next++) {
          const status = await get('/files', { authorization: `Bearer guess-${i}` }, attacker)
          statuses.set(status, (statuses.get(status) ?? 0) + 1)
        }
      }),
    )
    const goodStatuses: number[] = []
    const client = agent('127.0.0.1')
    while (next < 10_000) goodStatuses.push(await get('/files', good, client))
    await guessing
    assert.ok(
      goodStatuses.length > 0 && goodStatuses.every((s) => s === 200),
      `the good client was served every time: ${goodStatuses.filter((s) => s !== 200)}`,
    )
    assert.equal((statuses.get(401) ?? 0) + (statuses.get(429) ?? 0), 10_000, JSON.stringify([...statuses]))
    assert.ok((statuses.get(429) ?? 0) > (statuses.get(401) ?? 0), `most guesses were refused unread: ${JSON.stringify([...statuses])}`)
    assert.equal(await metric(target.api, 'houseparty_auth_failures_total', 'api="files"'), statuses.get(401))
    assert.equal(await metric(target.api, 'houseparty_auth_throttled_total', 'api="files"'), statuses.get(429))
    await cleanup()
  })
})
