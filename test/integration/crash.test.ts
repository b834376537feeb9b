import assert from 'node:assert/strict'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { bytesOf, getBytes, putBytes, sha256 } from '../helpers/files.ts'
import { partiesForThisFile, waitForAgreement } from '../helpers/party.ts'
import { waitFor } from '../helpers/wait.ts'

const newParty = partiesForThisFile()
const WRITERS = 16
/** Puts acknowledged before the whole party is killed: enough that many are mid-flight at that moment. */
const ACKED_BEFORE_KILL = 150

describe('a crash in the middle of a burst of small puts', () => {
  it('SIGKILL of every peer at once loses no acknowledged put and leaves no half-written file visible', { timeout: 180_000 }, async () => {
    const { party } = await newParty(5)
    const all = [0, 1, 2, 3, 4]
    await Promise.all(all.map((i) => party.start(i, i === 0 ? [] : [0])))
    await waitForAgreement(party, all, 5)

    const acked = new Map<string, string>()
    const attempted = new Map<string, string>()
    let killed = false
    const writers = Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; !killed; i++) {
        const name = `crash/${w}/${i}`
        const data = bytesOf(1024 + ((w * 7919 + i * 104_729) % (7 * 1024)), w * 1000 + i)
        attempted.set(name, sha256(data))
        const res = await putBytes(party.peer((w + i) % all.length).api, name, data).catch(() => undefined)
        if (res?.status === 201 && !killed) acked.set(name, sha256(data))
        await res?.arrayBuffer().catch(() => undefined)
      }
    })
    await waitFor(`${ACKED_BEFORE_KILL} puts acknowledged`, () => acked.size >= ACKED_BEFORE_KILL, { timeoutMs: 120_000, intervalMs: 20 })
    // Every peer at once, while puts are in flight: what was acknowledged must have been durable.
    for (const i of all) party.signal(i, 'SIGKILL')
    killed = true
    const ackedAtKill = new Map(acked)
    for (const i of all) await party.exited(i)
    await Promise.all(writers)

    await Promise.all(all.map((i) => party.start(i, i === 0 ? [] : [0])))
    await waitForAgreement(party, all, 5, 60_000)
    for (const [name, hash] of ackedAtKill) {
      const got = await waitFor(`${name} readable after the restart`, async () => {
        const res = await getBytes(party.peer(1).api, name).catch(() => undefined)
        return res?.status === 200 ? res : false
      })
      assert.equal(sha256(got.body), hash, `${name} came back different`)
    }
    // A put cut off by the crash is all there or not there: whatever is listed reads back as what was put.
    const res = await fetch(`http://${party.peer(2).api}/files?prefix=crash/&limit=10000`)
    const { files } = (await res.json()) as { files: { name: string }[] }
    assert.ok(files.length >= ackedAtKill.size, `${files.length} files listed, ${ackedAtKill.size} acknowledged`)
    for (const { name } of files.filter((f) => !ackedAtKill.has(f.name))) {
      const got = await getBytes(party.peer(3).api, name)
      assert.equal(got.status, 200, `${name} is listed but cannot be read`)
      assert.equal(sha256(got.body), attempted.get(name), `${name} came back different`)
    }
    console.log(`# ${ackedAtKill.size} puts acknowledged before the kill, ${attempted.size - ackedAtKill.size} cut off; ${files.length} files listed after`)
    // No temporary file survives a restart on any peer.
    for (const i of all) assert.deepEqual(await readdir(join(party.peer(i).dataDir, 'tmp')), [], `peer ${i} left temporary files`)
  })
})
