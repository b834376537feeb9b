import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { describe, it } from 'node:test'
import { setTimeout as hold } from 'node:timers/promises'
import type { LocalParty } from '../../src/cli/local-party.ts'
import { MIN_NODE, supportedNode } from '../../src/shared/runtime.ts'
import { bytesOf, getBytes, putBytes, sha256 } from '../helpers/files.ts'
import { BUILT_CLI, guestsOf, metric, partiesForThisFile, partyHealth, startParty, sumMetric, waitForAgreement } from '../helpers/party.ts'
import { waitFor } from '../helpers/wait.ts'

/**
 * What pods do every day, on real peer processes: pauses (SIGSTOP), two
 * deaths at once with the coordinator among them, restarts on the old data
 * dir, a whole party restarted, stalls of a second. Each test is a defect a
 * fault-injection run found; each failed before membership kept identities,
 * decided changes by quorum and waited before rebuilding.
 */
const newParty = partiesForThisFile()

interface Stored {
  name: string
  hash: string
}

async function putFiles(party: LocalParty, peers: readonly number[], count: number, size = 64 * 1024): Promise<Stored[]> {
  const out: Stored[] = []
  for (let i = 0; i < count; i++) {
    const data = bytesOf(size + i, 1000 + i)
    const res = await putBytes(party.peer(peers[i % peers.length] as number).api, `pint/${i}`, data)
    assert.equal(res.status, 201, `put pint/${i}: ${await res.text()}`)
    out.push({ name: `pint/${i}`, hash: sha256(data) })
  }
  return out
}

async function readBack(party: LocalParty, peer: number, files: readonly Stored[]): Promise<void> {
  for (const f of files) {
    const got = await getBytes(party.peer(peer).api, f.name)
    assert.equal(got.status, 200, `get ${f.name}: ${JSON.stringify(got.json)}`)
    assert.equal(sha256(got.body), f.hash, `${f.name} came back different`)
  }
}

/** Waits until /health/party on `peer` says every file is at full redundancy with every guest answering. */
async function allHealthy(party: LocalParty, peer: number, files: number, guests: number, timeoutMs: number): Promise<void> {
  await waitFor(
    `${files} files healthy on ${guests} answering guests`,
    async () => {
      const h = await partyHealth(party.peer(peer).api)
      return h.files === files && h.healthy === files && h.answered === guests && h.guests === guests ? h : false
    },
    { timeoutMs, intervalMs: 200 },
  )
}

const ids = async (party: LocalParty, peers: readonly number[]): Promise<string[]> =>
  Promise.all(peers.map(async (i) => (await guestsOf(party.peer(i).api)).self ?? ''))

describe('membership that survives real pods', () => {
  it('two peers frozen for 8 s, 1.5 s apart: every file healthy within 15 s of waking, none rebuilt', { timeout: 180_000 }, async () => {
    const { party } = await newParty(6)
    const all = [0, 1, 2, 3, 4, 5]
    await startParty(party, 6)
    const files = await putFiles(party, all, 30)
    await allHealthy(party, 0, files.length, 6, 60_000)
    const before = await ids(party, all)
    const rebuiltBefore = await sumMetric(party, all, 'houseparty_fragments_rebuilt_total')

    party.signal(2, 'SIGSTOP')
    await hold(1_500)
    party.signal(4, 'SIGSTOP')
    await hold(6_500)
    party.signal(2, 'SIGCONT')
    await hold(1_500)
    party.signal(4, 'SIGCONT')
    const woke = performance.now()

    await waitForAgreement(party, all, 6, 15_000)
    await allHealthy(party, 0, files.length, 6, 15_000 - (performance.now() - woke))
    console.log(`# both frozen peers back and every file healthy ${((performance.now() - woke) / 1000).toFixed(1)} s after the second woke`)
    assert.deepEqual(await ids(party, all), before, 'the frozen peers came back under the identities they had')
    for (const i of [2, 4]) {
      assert.ok(
        (await metric(party.peer(i).api, 'houseparty_membership_events_total', 'event="removed_self"')) >= 1,
        `peer ${i} had been voted out while frozen`,
      )
    }
    assert.equal((await sumMetric(party, all, 'houseparty_fragments_rebuilt_total')) - rebuiltBefore, 0, 'nothing was rebuilt')
    await readBack(party, 1, files)
  })

  it('a peer frozen until its fragments were rebuilt elsewhere wakes and drops none of them', { timeout: 180_000 }, async () => {
    // Quick recovery, and a short orphan grace: the copies rebuilt while it is frozen are old enough to drop when it wakes.
    const { party } = await newParty(6, ['--census-interval-ms', '1000', '--rebuild-delay-ms', '500', '--orphan-grace-ms', '500'])
    const all = [0, 1, 2, 3, 4, 5]
    const others = all.filter((i) => i !== 2)
    await startParty(party, 6)
    const files = await putFiles(party, all, 30)
    await allHealthy(party, 0, files.length, 6, 60_000)
    party.signal(2, 'SIGSTOP')
    let rebuiltWhileFrozen: number
    let readoptedWhileFrozen: number
    try {
      await waitForAgreement(party, others, 5, 30_000)
      await allHealthy(party, 0, files.length, 5, 60_000)
      rebuiltWhileFrozen = await sumMetric(party, others, 'houseparty_fragments_rebuilt_total')
      readoptedWhileFrozen = await sumMetric(party, others, 'houseparty_fragments_readopted_total')
      assert.ok(rebuiltWhileFrozen > 0, 'the frozen peer held fragments, rebuilt elsewhere')
      // Frozen a while longer: the rebuilt copies age past the orphan grace.
      await hold(1_000)
    } finally {
      party.signal(2, 'SIGCONT')
    }
    // Awake, its records are those of before the freeze: until it has caught up, it must not act on them (they say
    // the copies rebuilt meanwhile are extra ones).
    await waitForAgreement(party, all, 6, 30_000)
    await allHealthy(party, 0, files.length, 6, 60_000)
    // Two census passes more on every peer: a copy dropped by mistake would be missing by then, and rebuilt.
    const passes = async (): Promise<number[]> => Promise.all(all.map((i) => metric(party.peer(i).api, 'houseparty_census_parts_total', 'result="compared"')))
    const start = await passes()
    await waitFor('two more census passes on every peer', async () => (await passes()).every((n, i) => n >= (start[i] as number) + 2), { timeoutMs: 60_000 })
    await allHealthy(party, 0, files.length, 6, 60_000)
    const rebuilt = (await sumMetric(party, all, 'houseparty_fragments_rebuilt_total')) - rebuiltWhileFrozen
    // A rebuilt copy dropped by mistake is rebuilt again, or, while the woken peer still holds its own old copy, recorded there.
    const readopted = (await sumMetric(party, all, 'houseparty_fragments_readopted_total')) - readoptedWhileFrozen
    assert.deepEqual({ rebuilt, readopted }, { rebuilt: 0, readopted: 0 }, 'copies the records count on were dropped after the frozen peer woke')
    await readBack(party, 1, files)
  })

  it('the coordinator and one guest SIGKILLed together (4+2, 8 peers): both removed, then a newcomer admitted', { timeout: 180_000 }, async () => {
    const { party } = await newParty(9, ['--data-fragments', '4', '--parity-fragments', '2'])
    await startParty(party, 8)
    const files = await putFiles(party, [1, 2, 3], 12)
    const coordinatorAddress = (await guestsOf(party.peer(3).api)).guests[0]?.address
    const coordinator = party.peers.find((p) => coordinatorAddress?.endsWith(`:${p.port}`))?.index ?? 0
    const other = coordinator === 5 ? 6 : 5
    const t0 = performance.now()
    party.signal(coordinator, 'SIGKILL')
    party.signal(other, 'SIGKILL')
    const survivors = [0, 1, 2, 3, 4, 5, 6, 7].filter((i) => i !== coordinator && i !== other)
    await waitForAgreement(party, survivors, 6, 30_000)
    console.log(`# coordinator and one more SIGKILLed: both removed on every survivor ${((performance.now() - t0) / 1000).toFixed(1)} s later`)
    await party.start(8, [survivors[0] as number])
    await waitForAgreement(party, [...survivors, 8], 7, 30_000)
    await readBack(party, survivors[1] as number, files)
  })

  it('a peer SIGKILLed and restarted on its data dir keeps its id; its files are healthy again with nothing rebuilt', { timeout: 180_000 }, async () => {
    const { party } = await newParty(5)
    const all = [0, 1, 2, 3, 4]
    await startParty(party, 5)
    const files = await putFiles(party, all, 30)
    await allHealthy(party, 0, files.length, 5, 60_000)
    const id = (await guestsOf(party.peer(3).api)).self
    const held = await metric(party.peer(3).api, 'houseparty_fragments_held')
    const rebuiltBefore = await sumMetric(party, all, 'houseparty_fragments_rebuilt_total')
    party.signal(3, 'SIGKILL')
    await waitForAgreement(party, [0, 1, 2, 4], 4, 15_000)
    await party.start(3, [0])
    const t0 = performance.now()
    await waitForAgreement(party, all, 5, 20_000)
    await allHealthy(party, 0, files.length, 5, 20_000)
    console.log(`# restarted on its data dir: every file healthy ${((performance.now() - t0) / 1000).toFixed(1)} s after the restart`)
    assert.equal((await guestsOf(party.peer(3).api)).self, id, 'the same id after the restart')
    assert.equal(await metric(party.peer(3).api, 'houseparty_fragments_held'), held, 'it still holds every fragment it had')
    assert.equal((await sumMetric(party, all, 'houseparty_fragments_rebuilt_total')) - rebuiltBefore, 0, 'nothing was rebuilt')
    await readBack(party, 3, files)
  })

  it('a whole party SIGKILLed and restarted on its data dirs comes back as the same party, with its files', { timeout: 180_000 }, async () => {
    const { party } = await newParty(5)
    const all = [0, 1, 2, 3, 4]
    const first = await startParty(party, 5)
    const files = await putFiles(party, all, 10)
    await allHealthy(party, 0, files.length, 5, 60_000)
    const before = await ids(party, all)
    for (const i of all) party.signal(i, 'SIGKILL')
    for (const i of all) await party.exited(i)
    // Peer 0 was started without doors (it founded the party): restarted, it resumes the list on its disk instead.
    await Promise.all(all.map((i) => party.start(i, i === 0 ? [] : [0])))
    const lists = await waitForAgreement(party, all, 5, 30_000)
    assert.deepEqual(await ids(party, all), before, 'every peer kept its id')
    assert.ok((lists[0]?.epoch ?? 0) >= (first[0]?.epoch ?? 0), 'the same party, carried on (not a new one at epoch 1)')
    // Each resumed guest has its entry updated to its new start.
    await waitFor('every entry to name the new starts', async () => (await guestsOf(party.peer(0).api)).guests.every((g) => g.incarnation === 2), {
      timeoutMs: 20_000,
    })
    await allHealthy(party, 0, files.length, 5, 30_000)
    assert.equal(await sumMetric(party, all, 'houseparty_fragments_rebuilt_total'), 0, 'nothing was rebuilt')
    await readBack(party, 2, files)
  })

  it('with 2 of 8 guests frozen, /health/party says who did not answer and counts their files as not healthy', { timeout: 180_000 }, async () => {
    const { party } = await newParty(8)
    const all = [0, 1, 2, 3, 4, 5, 6, 7]
    await startParty(party, 8)
    const files = await putFiles(party, all, 24)
    await allHealthy(party, 0, files.length, 8, 60_000)
    party.signal(3, 'SIGSTOP')
    party.signal(6, 'SIGSTOP')
    try {
      // Asked at once, before anyone is voted out: the frozen are still guests, and do not answer.
      const h = await partyHealth(party.peer(0).api)
      assert.equal(h.guests, 8)
      assert.equal(h.answered, 6)
      assert.ok(h.healthy < files.length, `files with a fragment on a frozen guest are not healthy (healthy ${h.healthy} of ${h.files})`)
      assert.equal(h.healthy + h.degraded + h.lost, files.length)
    } finally {
      party.signal(3, 'SIGCONT')
      party.signal(6, 'SIGCONT')
    }
    await allHealthy(party, 0, files.length, 8, 60_000)
  })

  it('a peer stalled for a second at a time is never voted out', { timeout: 120_000 }, async () => {
    const { party } = await newParty(5)
    const all = [0, 1, 2, 3, 4]
    const [first] = await startParty(party, 5)
    for (let stall = 0; stall < 8; stall++) {
      party.signal(2, 'SIGSTOP')
      await hold(1_000)
      party.signal(2, 'SIGCONT')
      await hold(1_500)
    }
    const [now] = await waitForAgreement(party, all, 5, 10_000)
    assert.equal(now?.epoch, first?.epoch, 'the guest list never changed')
    assert.equal(await sumMetric(party, all, 'houseparty_membership_events_total', 'event="vote_dead"'), 0)
  })

  it('file routes answer 503 ERR_NOT_ADMITTED with Retry-After until the peer is a guest', async () => {
    const { party } = await newParty(2)
    await party.start(1, [0]) // its only door is not up: it keeps knocking
    await waitFor('peer 1 to serve its API', () => guestsOf(party.peer(1).api), { timeoutMs: 30_000 })
    for (const [method, path] of [
      ['GET', '/files/x'],
      ['PUT', '/files/x'],
      ['GET', '/files'],
      ['GET', '/health/party'],
    ] as const) {
      const res = await fetch(`http://${party.peer(1).api}${path}`, { method, body: method === 'PUT' ? 'data' : undefined })
      assert.equal(res.status, 503, `${method} ${path}`)
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'ERR_NOT_ADMITTED', `${method} ${path}`)
      assert.ok(Number(res.headers.get('retry-after')) > 0, `${method} ${path} says when to retry`)
    }
  })

  it(`refuses to start on a Node.js older than ${MIN_NODE}, in one line`, (t) => {
    const old = ['/usr/bin/node', '/usr/local/bin/node'].find((bin) => {
      if (!existsSync(bin)) return false
      const v = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim()
      return !supportedNode(v)
    })
    if (!old) return t.skip(`no Node.js older than ${MIN_NODE} on this machine to try`)
    const run = spawnSync(old, [BUILT_CLI, 'peer', '--insecure'], { encoding: 'utf8', timeout: 20_000 })
    assert.equal(run.status, 1)
    assert.match(
      run.stderr.trim(),
      new RegExp(`^houseparty needs Node.js ${MIN_NODE.replace('.', '\\.')} or newer; this is Node.js \\d+\\.\\d+\\.\\d+\\. [^\\n]*$`),
    )
  })
})
