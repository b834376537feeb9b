import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { connect } from 'node:net'
import { join } from 'node:path'
import { before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import type { LocalParty } from '../../src/cli/local-party.ts'
import { chunkChecksum, fragmentDigest } from '../../src/peer/codec/index.ts'
import { call, dial, PeerTls } from '../../src/peer/net/index.ts'
import { PintReplies } from '../../src/peer/protocol/index.ts'
import { systemClock } from '../../src/shared/clock.ts'
import { isHousePartyError } from '../../src/shared/errors.ts'
import { bytesOf, corruptInlineFragment, fileUrl, fragmentFiles, getBytes, putBytes, sha256 } from '../helpers/files.ts'
import { CLI, guestsOf, metric, partiesForThisFile, startParty, sumMetric, waitForAgreement } from '../helpers/party.ts'
import { waitFor } from '../helpers/wait.ts'

const newParty = partiesForThisFile()
const run = promisify(execFile)
const MiB = 1024 * 1024
/** The peers' --transfer-timeout-ms (its default): a transfer that makes no progress this long is cut. */
const TRANSFER_TIMEOUT_MS = 5_000

interface Listing {
  files: { name: string; size: number; hash: string; health: string; version: string; holders: { index: number; guest: string; live: boolean }[] }[]
}

async function listing(api: string): Promise<Listing> {
  return (await (await fetch(`http://${api}/files`)).json()) as Listing
}

async function tmpFiles(dataDir: string): Promise<string[]> {
  return readdir(join(dataDir, 'tmp')).catch(() => [])
}

async function peerIndexOf(party: LocalParty, n: number, id: string): Promise<number> {
  for (let i = 0; i < n; i++) if (party.isRunning(i) && (await guestsOf(party.peer(i).api)).self === id) return i
  throw new Error(`no running peer has id ${id}`)
}

async function totalFragments(party: LocalParty, peers: number[]): Promise<number> {
  let n = 0
  for (const i of peers) n += await metric(party.peer(i).api, 'houseparty_fragments_held')
  return n
}

/** The names of the fragments guest `guest` holds, one per fragment, as the peer at `api` is told (GET /guests/ID/fragments). */
async function fragmentNames(api: string, guest: string): Promise<string[]> {
  const reply = (await (await fetch(`http://${api}/guests/${guest}/fragments`)).json()) as { fragments: { name: string }[] }
  return reply.fragments.map((f) => f.name)
}

/** How many fragments of `name` peer `i` says it holds: unlike its fragment count, not moved by recovery work meanwhile. */
async function heldOf(party: LocalParty, i: number, name: string): Promise<number> {
  const { self } = await guestsOf(party.peer(i).api)
  return (await fragmentNames(party.peer(i).api, self)).filter((n) => n === name).length
}

/**
 * The fragment count once it stops moving (the same over 1.5 s): right
 * after a put, a superseded version's fragments may still be on their way out.
 */
async function settledFragments(party: LocalParty, peers: number[]): Promise<number> {
  let last = -1
  let since = Date.now()
  return waitFor(
    'the fragment count to settle',
    async () => {
      const n = await totalFragments(party, peers)
      if (n !== last) {
        last = n
        since = Date.now()
        return false
      }
      return Date.now() - since >= 1_500 ? n : false
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  )
}

describe('files on a party of 5 real peers (2+1, 1 MiB stripes)', () => {
  let party: LocalParty
  const all = [0, 1, 2, 3, 4]
  before(async () => {
    // SIGTERM here means "restart" (as for a StatefulSet pod that comes back); the chaos test covers leaving for good.
    ;({ party } = await newParty(5, ['--on-stop', 'restart']))
    await startParty(party, 5)
  })

  it('round-trips sizes 0, 1, 2, 3, odd, one stripe, one stripe + 1 and 100 MiB through any peer', async () => {
    for (const size of [0, 1, 2, 3, 7, 1001, 65_537, MiB - 1, MiB, MiB + 1, 3 * MiB + 5, 100 * MiB]) {
      const data = bytesOf(size, size + 1)
      const name = `sizes/${size}.bin`
      const put = await putBytes(party.peer(size % 5).api, name, data)
      assert.equal(put.status, 201, `${size}: ${await put.clone().text()}`)
      const reply = (await put.json()) as { size: number; hash: string }
      assert.deepEqual([reply.size, reply.hash], [size, sha256(data)])
      const got = await getBytes(party.peer((size + 2) % 5).api, name)
      assert.equal(got.status, 200, `${size}: ${JSON.stringify(got.json)}`)
      assert.equal(got.body.length, size)
      assert.equal(sha256(got.body), sha256(data), `size ${size}`)
      assert.equal(got.etag, `"${sha256(data)}"`)
    }
    const head = await fetch(fileUrl(party.peer(3).api, 'sizes/1001.bin'), { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.equal(head.headers.get('content-length'), '1001')
    assert.equal(head.headers.get('x-houseparty-health'), 'ok')
  })

  it('spreads fragments over distinct peers and lists every file with its health', async () => {
    const { files } = await listing(party.peer(1).api)
    const sized = files.filter((f) => f.name.startsWith('sizes/'))
    assert.equal(sized.length, 12)
    for (const f of sized) {
      assert.equal(f.health, 'ok')
      assert.equal(new Set(f.holders.map((h) => h.guest)).size, 3, `${f.name} on 3 distinct peers`)
    }
    // What each guest holds adds up to what the listing says.
    let held = 0
    for (const i of all) {
      const { self } = await guestsOf(party.peer(i).api)
      held += (await fragmentNames(party.peer(0).api, self)).filter((name) => name.startsWith('sizes/')).length
    }
    assert.equal(held, 36)
  })

  it('replaces a name atomically and removes files with all their fragments', async () => {
    const before = await totalFragments(party, all)
    const v1 = bytesOf(2 * MiB + 3, 11)
    const v2 = bytesOf(MiB + 9, 12)
    assert.equal((await putBytes(party.peer(0).api, 'replace/me', v1)).status, 201)
    assert.equal((await putBytes(party.peer(1).api, 'replace/me', v2)).status, 201)
    const got = await getBytes(party.peer(2).api, 'replace/me')
    assert.equal(sha256(got.body), sha256(v2))
    // The old version's fragments are dropped: 3 fragments for the one live version.
    await waitFor('old fragments dropped', async () => (await totalFragments(party, all)) === before + 3, { timeoutMs: 10_000 })

    const del = await fetch(fileUrl(party.peer(3).api, 'replace/me'), { method: 'DELETE' })
    assert.equal(del.status, 200)
    for (const i of all) assert.equal((await getBytes(party.peer(i).api, 'replace/me')).status, 404)
    assert.equal(
      (await listing(party.peer(4).api)).files.find((f) => f.name === 'replace/me'),
      undefined,
    )
    await waitFor('fragments removed', async () => (await totalFragments(party, all)) === before, { timeoutMs: 10_000 })
    const again = await fetch(fileUrl(party.peer(3).api, 'replace/me'), { method: 'DELETE' })
    assert.equal(again.status, 404)
  })

  it('rejects hostile names with 400 ERR_BAD_NAME and keeps serving', async () => {
    const api = party.peer(2).api
    // node:http sends the path as written; fetch would normalise "..".
    const raw = (path: string, method = 'PUT'): Promise<{ status: number; code?: string }> =>
      new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: party.peer(2).apiPort, path, method }, (res) => {
          let text = ''
          res.on('data', (d) => {
            text += d
          })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(text || '{}') as { error?: { code: string } }).error?.code }))
        })
        req.on('error', reject)
        req.end(method === 'PUT' ? 'x' : undefined)
      })
    const hostile = [
      '/files/..',
      '/files/a/../b',
      '/files/a/%2E%2E/b',
      '/files/%2E%2E%2Fescape',
      '/files//etc/passwd',
      '/files/a%00b',
      '/files/tab%09name',
      '/files/back%5Cslash',
      '/files/a//b',
      '/files/trailing/',
      '/files/.',
      `/files/${'x'.repeat(1025)}`,
      `/files/${encodeURIComponent('é'.repeat(513))}`,
      '/files/%ED%A0%80',
    ]
    for (const path of hostile) assert.deepEqual(await raw(path), { status: 400, code: 'ERR_BAD_NAME' }, path)
    for (const path of ['/files/..', '/files/a%00b']) {
      assert.equal((await raw(path, 'GET')).status, 400, `GET ${path}`)
      assert.equal((await raw(path, 'DELETE')).status, 400, `DELETE ${path}`)
    }
    // Names that look odd but are legal keys round-trip.
    for (const name of ['ünïcødé/名前 with spaces.txt', 'q?x=1&y#frag', `${'k'.repeat(1024)}`, '.hidden/..dots../x']) {
      const data = bytesOf(333, name.length)
      assert.equal((await putBytes(api, name, data)).status, 201, name)
      assert.equal(sha256((await getBytes(party.peer(0).api, name)).body), sha256(data), name)
    }
    assert.equal((await fetch(`http://${api}/files/missing/file`)).status, 404)
    assert.equal((await guestsOf(api)).guests.length, 5)
  })

  it('serves concurrent puts and gets of the same and different names consistently', async () => {
    const versions = [0, 1, 2, 3].map((i) => bytesOf(MiB + 100 * i, 40 + i))
    const hashes = new Set(versions.map(sha256))
    await putBytes(party.peer(0).api, 'race', versions[0] as Buffer)
    const puts = versions.map((v, i) => putBytes(party.peer(i).api, 'race', v))
    const gets = [0, 1, 2, 3, 4, 0, 1, 2].map((i) => getBytes(party.peer(i).api, 'race'))
    const others = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => bytesOf(200_000 + i, 60 + i))
    const otherPuts = others.map((d, i) => putBytes(party.peer(i % 5).api, `many/${i}`, d))
    const answers = await Promise.all(puts)
    for (const p of answers) assert.equal(p.status, 201)
    const bodies = (await Promise.all(answers.map((p) => p.json()))) as { hash: string; current: boolean }[]
    for (const g of await Promise.all(gets)) {
      assert.equal(g.status, 200)
      assert.ok(hashes.has(sha256(g.body)), 'a reader sees one whole version, never a mix')
    }
    for (const p of await Promise.all(otherPuts)) assert.equal(p.status, 201)
    const final = sha256((await getBytes(party.peer(4).api, 'race')).body)
    assert.ok(hashes.has(final))
    for (const i of all) assert.equal(sha256((await getBytes(party.peer(i).api, 'race')).body), final, 'every peer agrees on the winner')
    // The put that stays says it is current; one that says it is not is not the one stored. (Exactly one says so
    // only if all four overlapped at the peers: on a busy machine one may end before another begins, and was current then.)
    const stored = bodies.filter((b) => b.hash === final)
    assert.ok(stored.length > 0 && stored.every((b) => b.current), `the stored version's put says current: ${JSON.stringify(bodies)}`)
    for (const b of bodies) if (!b.current) assert.notEqual(b.hash, final, 'a put that says it lost is not the one stored')
    const results = await Promise.all(others.map((_, i) => getBytes(party.peer((i + 1) % 5).api, `many/${i}`)))
    results.forEach((r, i) => {
      assert.equal(sha256(r.body), sha256(others[i] as Buffer))
    })
  })

  it('a reader that stalls mid-file gets its own bytes while other gets on the same peer reuse chunk buffers', async () => {
    const stalled = bytesOf(24 * MiB, 91)
    const fast = bytesOf(24 * MiB, 92)
    for (const [name, data] of [
      ['reuse/stalled', stalled],
      ['reuse/fast', fast],
    ] as const)
      assert.equal((await putBytes(party.peer(0).api, name, data)).status, 201)
    // The stalled reader takes one piece, then stops reading: what the peer has written to its socket but not sent
    // waits there, and must not be the buffers the fast gets below read into.
    const pieces: Buffer[] = []
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) =>
      request(fileUrl(party.peer(2).api, 'reuse/stalled'), resolve)
        .on('error', reject)
        .end(),
    )
    assert.equal(res.statusCode, 200)
    const first = await new Promise<Buffer>((resolve) => res.once('data', resolve))
    res.pause()
    pieces.push(first)
    for (let i = 0; i < 3; i++) assert.equal(sha256((await getBytes(party.peer(2).api, 'reuse/fast')).body), sha256(fast))
    res.on('data', (piece: Buffer) => pieces.push(piece))
    res.resume()
    await new Promise((resolve) => res.once('end', resolve))
    assert.equal(sha256(Buffer.concat(pieces)), sha256(stalled))
  })

  it('concurrent small puts of one name (sent whole, announced while their fragments travel): one version wins everywhere', async () => {
    for (let round = 0; round < 5; round++) {
      const versions = [0, 1, 2, 3].map((i) => bytesOf(1000 + 37 * i, 80 + 4 * round + i))
      const answers = await Promise.all(versions.map((v, i) => putBytes(party.peer((i + round) % 5).api, 'race-small', v)))
      for (const a of answers) assert.equal(a.status, 201)
      const bodies = (await Promise.all(answers.map((a) => a.json()))) as { hash: string; current: boolean }[]
      const final = sha256((await getBytes(party.peer(round % 5).api, 'race-small')).body)
      assert.ok(versions.map(sha256).includes(final), 'a reader sees one whole version')
      for (const i of all) assert.equal(sha256((await getBytes(party.peer(i).api, 'race-small')).body), final, 'every peer agrees on the winner')
      const stored = bodies.filter((b) => b.hash === final)
      assert.ok(stored.length > 0 && stored.every((b) => b.current), `the stored version's put says current: ${JSON.stringify(bodies)}`)
    }
  })

  it('a put cut off mid-upload stores nothing and leaves no partial fragment', async () => {
    const keep = bytesOf(MiB, 77)
    await putBytes(party.peer(0).api, 'cut/kept', keep)
    const before = await settledFragments(party, all)
    for (const name of ['cut/new', 'cut/kept']) {
      const socket = connect({ host: '127.0.0.1', port: party.peer(1).apiPort })
      await new Promise((r) => socket.once('connect', r))
      socket.write(`PUT /files/${name} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${10 * MiB}\r\n\r\n`)
      socket.write(bytesOf(3 * MiB, 5))
      // Wait until the fragments are streaming, then cut the upload.
      await waitFor('fragments streaming', async () => (await Promise.all(all.map((i) => tmpFiles(party.peer(i).dataDir)))).flat().length >= 3, {
        timeoutMs: 10_000,
        intervalMs: 20,
      })
      socket.destroy()
      // Holders whose sender vanished notice at once (the connection closes) or, at the latest, after the transfer
      // timeout; each then waits for its queued disk writes and a datasync before it deletes the temporary file.
      await waitFor(
        'temporary fragments cleaned',
        async () => {
          const left = (await Promise.all(all.map(async (i) => (await tmpFiles(party.peer(i).dataDir)).map((f) => `peer ${i}: ${f}`)))).flat()
          if (left.length > 0) throw new Error(`still there: ${left.join(', ')}`)
          return true
        },
        { timeoutMs: 6 * TRANSFER_TIMEOUT_MS },
      )
    }
    assert.equal((await getBytes(party.peer(2).api, 'cut/new')).status, 404)
    assert.equal(sha256((await getBytes(party.peer(2).api, 'cut/kept')).body), sha256(keep), 'the previous version is still served')
    assert.equal(await settledFragments(party, all), before, 'the cut uploads left no fragment behind')
  })

  it('a raw holdMyPint cut mid-chunk, or sent with the wrong key, stores nothing', async () => {
    const key = Buffer.from((await readFile(join(party.peer(0).dataDir, '..', 'party.key'), 'utf8')).trim())
    const target = party.peer(3)
    const options = { key, tls: new PeerTls(key), clock: systemClock, connectTimeoutMs: 2000, idleTimeoutMs: 5000 }
    const coding = { k: 2, m: 1, stripeBytes: MiB }
    const channel = await dial(`127.0.0.1:${target.port}`, { op: 'hold', name: 'raw/cut', version: '0000000000001-00000000', index: 0, coding }, options)
    await channel.readReply(PintReplies.holdReady)
    await channel.write(Buffer.from([0, 8, 0, 0])) // announces a 512 KiB chunk ...
    await channel.write(Buffer.alloc(4 + 1000)) // ... and sends 1000 bytes of it
    await waitFor('fragment being received', async () => (await tmpFiles(target.dataDir)).length === 1, { timeoutMs: 5_000, intervalMs: 20 })
    channel.destroy()
    await waitFor('partial fragment removed', async () => (await tmpFiles(target.dataDir)).length === 0, { timeoutMs: 5_000 })

    // Another party's key fails the TLS handshake, before any request is read; in clear, nothing is taken either.
    const rejected = (reason: string) => metric(target.api, 'houseparty_tcp_requests_rejected_total', `reason="${reason}"`)
    const [tlsBefore, plainBefore, macBefore] = [await rejected('tls'), await rejected('plain'), await rejected('mac')]
    const stranger = Buffer.from('not the party key at all')
    await assert.rejects(dial(`127.0.0.1:${target.port}`, { op: 'inventory' }, { ...options, key: stranger, tls: new PeerTls(stranger) }))
    await waitFor('the handshake refusal counted', async () => (await rejected('tls')) === tlsBefore + 1)
    const plain = await dial(`127.0.0.1:${target.port}`, { op: 'inventory' }, { ...options, tls: undefined })
    await assert.rejects(plain.readReply(PintReplies.inventory), /closed|failed/)
    await waitFor('the connection in clear counted', async () => (await rejected('plain')) === plainBefore + 1)
    // The party's TLS spoken as an earlier release does (frames with an HMAC each), under another key: each frame is still checked.
    const wrong = await dial(`127.0.0.1:${target.port}`, { op: 'inventory' }, { ...options, key: stranger, tls: new PeerTls(key, { macFrames: true }) })
    await assert.rejects(wrong.readReply(PintReplies.inventory), /closed|failed/)
    await waitFor('wrong key counted', async () => (await rejected('mac')) === macBefore + 1)
    assert.equal(await heldOf(party, 3, 'raw/cut'), 0)
    assert.equal((await guestsOf(target.api)).guests.length, 5)
  })

  it('a raw stash (a small fragment sent whole) cut short, damaged or of the wrong length stores nothing', async () => {
    const key = Buffer.from((await readFile(join(party.peer(0).dataDir, '..', 'party.key'), 'utf8')).trim())
    const target = party.peer(3)
    const address = `127.0.0.1:${target.port}`
    const options = { key, tls: new PeerTls(key), clock: systemClock, connectTimeoutMs: 2000, idleTimeoutMs: 5000 }
    const coding = { k: 2, m: 1, stripeBytes: MiB }
    const shard = Buffer.alloc(504, 7)
    const crc = chunkChecksum(shard)
    const trailer = { size: 1000, hash: 'a'.repeat(64), created: 1, digest: fragmentDigest([crc.toString('hex')]) }
    const body = { op: 'stash' as const, name: 'raw/stash', version: '0000000000001-00000000', index: 0, coding, trailer }
    // Cut mid-chunk: the holder waits for the rest, then its idle timeout closes the connection.
    const cut = await dial(address, body, options)
    await cut.write(Buffer.concat([Buffer.from([0, 0, 1, 248]), crc, shard.subarray(0, 100)]))
    cut.destroy()
    const damaged = Buffer.from(shard)
    damaged[3] = 1
    await assert.rejects(call(address, body, PintReplies.stash, options, { payload: (c) => c.writeChunk(damaged, crc) }), (e) =>
      isHousePartyError(e, 'ERR_CHECKSUM_MISMATCH'),
    )
    const short = shard.subarray(0, 496)
    await assert.rejects(call(address, body, PintReplies.stash, options, { payload: (c) => c.writeChunk(short, chunkChecksum(short)) }), (e) =>
      isHousePartyError(e, 'ERR_PROTOCOL'),
    )
    // The right bytes are taken, and the peer went on serving throughout.
    const held = await call(address, body, PintReplies.stash, options, { payload: (c) => c.writeChunk(shard, crc) })
    assert.equal(held.digest, trailer.digest)
    assert.equal(await heldOf(party, 3, 'raw/stash'), 1)
    await call(address, { op: 'drop', name: 'raw/stash', version: body.version }, PintReplies.drop, options)
    assert.equal(await heldOf(party, 3, 'raw/stash'), 0)
  })

  it('the CLI puts, lists, gets, shows peer contents and removes; `ui` browses and retrieves', async () => {
    const dir = join(party.peer(0).dataDir, '..')
    const src = join(dir, 'cli-source.bin')
    const data = bytesOf(3 * MiB + 17, 90)
    await writeFile(src, data)
    const cli = (...args: string[]) => run(process.execPath, [CLI, ...args, '--peer', party.peer(1).api], { cwd: dir, maxBuffer: 64 * MiB })
    const put = await cli('put', src, '--name', 'cli/data.bin')
    assert.match(put.stdout, new RegExp(`cli/data.bin\\t${data.length}\\t${sha256(data)}`))
    const ls = await cli('ls', '-r')
    assert.match(ls.stdout, /cli\/data\.bin\s+3\.0 MiB\s+ok\s+3\/3\s+2\+1/)
    await cli('get', 'cli/data.bin', '-o', join(dir, 'cli-copy.bin'))
    assert.equal(sha256(await readFile(join(dir, 'cli-copy.bin'))), sha256(data))
    const { self } = await guestsOf(party.peer(0).api)
    const contents = await cli('peer-contents', (self as string).slice(0, 6), '--json')
    assert.ok(Array.isArray((JSON.parse(contents.stdout) as { fragments: unknown[] }).fragments))

    const files = (await listing(party.peer(0).api)).files
    const pick = files.findIndex((f) => f.name === 'cli/data.bin') + 1
    const ui = execFile(process.execPath, [CLI, 'ui', '--peer', party.peer(2).api], { cwd: dir })
    let out = ''
    ui.stdout?.on('data', (d) => {
      out += d
    })
    ui.stdin?.end(`1\n2\n3\n1\n4\n${pick}\n${join(dir, 'ui-copy.bin')}\nq\n`)
    await new Promise((r) => ui.once('exit', r))
    assert.match(out, /5 guests/)
    assert.match(out, /cli\/data\.bin/)
    assert.match(out, /fragments,/)
    assert.match(out, /sha256 [0-9a-f]{64} verified/)
    assert.equal(sha256(await readFile(join(dir, 'ui-copy.bin'))), sha256(data))

    await cli('rm', 'cli/data.bin')
    await assert.rejects(cli('get', 'cli/data.bin', '-o', join(dir, 'gone.bin')), (err: Error & { stderr: string }) => /ERR_FILE_NOT_FOUND/.test(err.stderr))
  })

  it('skips a fragment corrupted on disk and still serves the right bytes', async () => {
    const data = bytesOf(4 * MiB + 1, 123)
    const put = (await (await putBytes(party.peer(0).api, 'corrupt/me', data)).json()) as { version: string }
    // Flip one byte in data fragment 0 (the one readers prefer) wherever it lives.
    let corrupted = 0
    for (const i of all) {
      for (const f of await fragmentFiles(party.peer(i).dataDir)) {
        if (!f.endsWith(`${put.version}.0.frag`)) continue
        const bytes = await readFile(f)
        bytes[MiB / 2 + 10] = (bytes[MiB / 2 + 10] as number) ^ 0xff
        await writeFile(f, bytes)
        corrupted++
      }
    }
    assert.equal(corrupted, 1)
    const skippedBefore = await metric(party.peer(4).api, 'houseparty_fragments_skipped_total', 'reason="corrupt"')
    const got = await getBytes(party.peer(4).api, 'corrupt/me')
    assert.equal(got.status, 200)
    assert.equal(sha256(got.body), sha256(data))
    assert.equal(await metric(party.peer(4).api, 'houseparty_fragments_skipped_total', 'reason="corrupt"'), skippedBefore + 1)
  })

  it("skips a small fragment damaged in its holder's table and still serves the right bytes", async () => {
    const data = bytesOf(5000, 321)
    const put = (await (await putBytes(party.peer(0).api, 'corrupt/small', data)).json()) as { version: string }
    // A small file's fragments live in their holders' fragments.db: damage data fragment 0 there.
    const damaged = all.filter((i) => corruptInlineFragment(party.peer(i).dataDir, { version: put.version, index: 0 }) !== undefined)
    assert.equal(damaged.length, 1)
    // Read through its holder: a small file's reader takes the fragment it holds itself first.
    const reader = damaged[0] as number
    const skippedBefore = await metric(party.peer(reader).api, 'houseparty_fragments_skipped_total', 'reason="corrupt"')
    const got = await getBytes(party.peer(reader).api, 'corrupt/small')
    assert.equal(got.status, 200)
    assert.equal(sha256(got.body), sha256(data))
    assert.equal(await metric(party.peer(reader).api, 'houseparty_fragments_skipped_total', 'reason="corrupt"'), skippedBefore + 1)
  })

  it('exports what each peer holds and moves', async () => {
    let files = 0
    let bytes = 0
    for (const i of all) {
      files += await metric(party.peer(i).api, 'houseparty_files_held')
      bytes += await metric(party.peer(i).api, 'houseparty_fragment_bytes_held')
    }
    assert.ok(files > 20 && bytes > 150 * MiB, `${files} files, ${bytes} bytes`)
    assert.ok((await metric(party.peer(0).api, 'houseparty_put_seconds_count', 'outcome="ok"')) > 0)
    assert.ok((await metric(party.peer(2).api, 'houseparty_get_seconds_count', 'outcome="ok"')) > 0)
  })

  it('gets a file from k fragments while a holder is SIGKILLed, and a restarted holder serves its fragments again', async () => {
    const data = bytesOf(5 * MiB + 3, 321)
    assert.equal((await putBytes(party.peer(0).api, 'survivor', data)).status, 201)
    const entry = (await listing(party.peer(0).api)).files.find((f) => f.name === 'survivor')
    const holder0 = entry?.holders.find((h) => h.index === 0)?.guest as string
    const victim = await peerIndexOf(party, 5, holder0)
    party.signal(victim, 'SIGKILL')
    await party.exited(victim)
    const reader = all.find((i) => i !== victim) as number
    // At once (before the death is declared) and after it.
    assert.equal(sha256((await getBytes(party.peer(reader).api, 'survivor')).body), sha256(data))
    const alive = all.filter((i) => i !== victim)
    await waitForAgreement(party, alive, 4)
    assert.equal(sha256((await getBytes(party.peer(reader).api, 'survivor')).body), sha256(data))
    assert.equal((await listing(party.peer(reader).api)).files.find((f) => f.name === 'survivor')?.health, 'degraded')

    // The restarted peer keeps its id and its fragments: with another holder gone, its fragment is needed.
    await party.start(victim, [reader])
    await waitForAgreement(party, all, 5)
    assert.equal((await guestsOf(party.peer(victim).api)).self, holder0)
    const holder1 = (await listing(party.peer(0).api)).files.find((f) => f.name === 'survivor')?.holders.find((h) => h.index === 1)?.guest as string
    const second = await peerIndexOf(party, 5, holder1)
    party.signal(second, 'SIGSTOP')
    try {
      const got = await getBytes(party.peer(victim).api, 'survivor')
      assert.equal(sha256(got.body), sha256(data))
    } finally {
      party.signal(second, 'SIGCONT')
    }
  })
  it('SIGTERM for a restart: the peer steps out at once, comes back on its data dir, and nothing moves or is rebuilt', async () => {
    const data = bytesOf(3 * MiB + 11, 4242)
    // The test before froze a peer: it may have been voted out and be on its way back in. Start from a whole party.
    await waitForAgreement(party, all, 5, 60_000)
    const put = await putBytes(party.peer(0).api, 'stays-put', data)
    assert.equal(put.status, 201, await put.text())
    const holderId = (await listing(party.peer(0).api)).files.find((f) => f.name === 'stays-put')?.holders[0]?.guest as string
    const victim = await peerIndexOf(party, 5, holderId)
    const others = all.filter((i) => i !== victim)
    await settledFragments(party, all)
    const held = await metric(party.peer(victim).api, 'houseparty_fragments_held')
    const rebuilt = (): Promise<number> => sumMetric(party, others, 'houseparty_fragments_rebuilt_total')
    const rebuiltBefore = await rebuilt()
    const votesBefore = await metric(party.peer(others[0] as number).api, 'houseparty_membership_events_total', 'event="vote_dead"')

    party.signal(victim, 'SIGTERM')
    assert.equal(await party.exited(victim, 10_000), 0, 'it exits cleanly, with no handoff to wait for')
    await waitForAgreement(party, others, 4)
    const log = await readFile(party.peer(victim).logFile, 'utf8')
    assert.match(log, /"intent":"restart".*"msg":"left the party"/, 'it said goodbye as a restart')
    assert.doesNotMatch(log, /handoff before leaving/, 'it handed nothing off')
    assert.equal(
      await metric(party.peer(others[0] as number).api, 'houseparty_membership_events_total', 'event="vote_dead"'),
      votesBefore,
      'announced, not detected',
    )
    // While it is away its file is degraded, readable, and not rebuilt: its fragments wait for it (--rebuild-delay-ms).
    assert.equal(sha256((await getBytes(party.peer(others[0] as number).api, 'stays-put')).body), sha256(data))

    await party.start(victim, [others[0] as number])
    await waitForAgreement(party, all, 5)
    assert.equal((await guestsOf(party.peer(victim).api)).self, holderId, 'the same guest')
    await waitFor('its file to be whole again', async () => (await listing(party.peer(0).api)).files.find((f) => f.name === 'stays-put')?.health === 'ok', {
      timeoutMs: 60_000,
    })
    // Rebalancing may move a fragment or two meanwhile; a handoff would have emptied it.
    assert.ok((await metric(party.peer(victim).api, 'houseparty_fragments_held')) >= held / 2, `it holds its fragments (${held} before)`)
    assert.equal(await rebuilt(), rebuiltBefore, 'nothing rebuilt')
  })

  it('a holder SIGKILLed in the middle of a put: its fragment is rebuilt onto another peer and the put succeeds', async () => {
    const data = bytesOf(60 * MiB + 11, 555)
    const uploading = putBytes(party.peer(0).api, 'midput/big', data)
    // Wait until some peer other than the coordinator has bytes of its fragment on disk, then kill it: the data is
    // flowing, so the put cannot just pick another guest for it (as it does for a holder lost before the data starts).
    const victim = await waitFor(
      'a holder receiving',
      async () => {
        for (const i of [1, 2, 3, 4]) {
          const dir = join(party.peer(i).dataDir, 'tmp')
          for (const f of await tmpFiles(party.peer(i).dataDir)) if ((await stat(join(dir, f)).catch(() => undefined))?.size) return i
        }
        return false
      },
      { timeoutMs: 20_000, intervalMs: 10 },
    )
    const victimId = (await guestsOf(party.peer(victim).api)).self
    party.signal(victim, 'SIGKILL')
    const res = await uploading
    assert.equal(res.status, 201, await res.clone().text())
    const entry = (await listing(party.peer(0).api)).files.find((f) => f.name === 'midput/big')
    assert.equal(entry?.holders.length, 3)
    assert.ok(!entry?.holders.some((h) => h.guest === victimId), 'no fragment recorded on the dead peer')
    assert.equal(sha256((await getBytes(party.peer(0).api, 'midput/big')).body), sha256(data))
    // Rebuilt by the put itself (the transfer failed) or, if the fragment was already stored when the holder died,
    // by the file's primary tracker a moment later: either way some live peer rebuilt it.
    const live = [0, 1, 2, 3, 4].filter((x) => x !== victim)
    await waitFor('a live peer to count the rebuild', async () => (await sumMetric(party, live, 'houseparty_fragments_rebuilt_total')) >= 1, {
      timeoutMs: 30_000,
    })
  })
})

describe('a slow upload', () => {
  it('an upload that stalls longer than the transfer timeout still stores the file: the holders hear from the put meanwhile', async () => {
    // A short transfer timeout, so the stall (a client on a slow link) outlasts it in a short test.
    const { party } = await newParty(3, ['--transfer-timeout-ms', '1000'])
    await startParty(party, 3)
    const data = bytesOf(3 * MiB + 5, 909)
    const socket = connect({ host: '127.0.0.1', port: party.peer(0).apiPort })
    await new Promise((r) => socket.once('connect', r))
    const answer = new Promise<string>((done) => {
      let text = ''
      socket.on('data', (b: Buffer) => {
        text += b.toString('utf8')
      })
      socket.on('close', () => done(text))
    })
    socket.write(`PUT /files/slow/upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: ${data.length}\r\n\r\n`)
    socket.write(data.subarray(0, 2 * MiB))
    // The holders are receiving: the put is under way when the client goes quiet.
    await waitFor('fragments streaming', async () => (await Promise.all([0, 1, 2].map((i) => tmpFiles(party.peer(i).dataDir)))).flat().length >= 2, {
      timeoutMs: 20_000,
      intervalMs: 20,
    })
    // The client's stall is the scenario itself: 2.5 times the holders' transfer timeout without a byte.
    await new Promise((r) => setTimeout(r, 2_500))
    socket.write(data.subarray(2 * MiB))
    const reply = await answer
    assert.match(reply, /^HTTP\/1\.1 201 /, reply.slice(0, 400))
    assert.equal(sha256((await getBytes(party.peer(1).api, 'slow/upload')).body), sha256(data))
  })
})

describe('files on 6 peers with 4+2 Reed-Solomon', () => {
  it('round-trips sizes and survives two holders SIGKILLed at once', async () => {
    const { party } = await newParty(6, ['--data-fragments', '4', '--parity-fragments', '2', '--stripe-bytes', '65536'])
    await startParty(party, 6)
    const S = 65536
    const sizes = [0, 1, 3, 4, 5, 31, S - 1, S, S + 1, 10 * S + 7, 3 * MiB + 1]
    for (const size of sizes) {
      const data = bytesOf(size, size + 5)
      assert.equal((await putBytes(party.peer(size % 6).api, `rs/${size}`, data)).status, 201)
      assert.equal(sha256((await getBytes(party.peer((size + 1) % 6).api, `rs/${size}`)).body), sha256(data), `size ${size}`)
    }
    const big = bytesOf(3 * MiB + 1, 3 * MiB + 6)
    const entry = (await listing(party.peer(0).api)).files.find((f) => f.name === `rs/${3 * MiB + 1}`)
    assert.equal(entry?.holders.length, 6)
    // Kill the holders of data fragments 0 and 1: the rest must decode with both parity fragments.
    const victims = await Promise.all([0, 1].map((ix) => peerIndexOf(party, 6, entry?.holders.find((h) => h.index === ix)?.guest as string)))
    for (const v of victims) party.signal(v, 'SIGKILL')
    const reader = [0, 1, 2, 3, 4, 5].find((i) => !victims.includes(i)) as number
    const got = await getBytes(party.peer(reader).api, `rs/${3 * MiB + 1}`)
    assert.equal(got.status, 200, JSON.stringify(got.json))
    const firstDiff = got.body.findIndex((b, i) => b !== big[i])
    assert.equal(sha256(got.body), sha256(big), `length ${got.body.length}, first difference at ${firstDiff}`)
  })
})

describe('a party too small for k+m, and an API token', () => {
  it('refuses a put with 503 naming how many guests could take fragments; the token guards the file API only', async () => {
    const { party } = await newParty(2, ['--api-token', 'sesame-sesame-sesame'])
    await startParty(party, 2)
    const auth = { authorization: 'Bearer sesame-sesame-sesame' }
    const api = party.peer(0).api
    assert.equal((await putBytes(api, 'x', Buffer.from('hello'))).status, 401)
    assert.equal((await putBytes(api, 'x', Buffer.from('hello'), { authorization: 'Bearer wrong' })).status, 401)
    assert.equal((await fetch(`http://${api}/files`)).status, 401)
    assert.equal((await fetch(`http://${api}/metrics`)).status, 200)
    assert.equal((await fetch(`http://${api}/healthz`)).status, 200)
    const res = await putBytes(api, 'x', Buffer.from('hello'), auth)
    assert.equal(res.status, 503)
    const body = (await res.json()) as { error: { code: string; message: string; details: { reachable: number } } }
    assert.equal(body.error.code, 'ERR_NOT_ENOUGH_PEERS')
    assert.match(body.error.message, /only 2 of the 2/)
    assert.equal((await getBytes(api, 'x', auth)).status, 404)
  })

  it('`houseparty peer ... FILE` puts the file once the party is big enough', async () => {
    const { party } = await newParty(3)
    const dir = join(party.peer(0).dataDir, '..')
    const src = join(dir, 'seed-file.txt')
    const data = bytesOf(100_000, 9)
    await writeFile(src, data)
    await party.start(0)
    await party.start(1, [0], [src])
    await waitForAgreement(party, [0, 1], 2)
    await party.start(2, [0])
    await waitForAgreement(party, [0, 1, 2], 3)
    const got = await waitFor('the seed file to be put', async () => {
      const r = await getBytes(party.peer(2).api, 'seed-file.txt')
      return r.status === 200 ? r : false
    })
    assert.equal(sha256(got.body), sha256(data))
  })
})
