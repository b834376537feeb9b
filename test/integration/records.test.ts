import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { bytesOf, getBytes, putBytes, sha256 } from '../helpers/files.ts'
import { metric, partiesForThisFile, waitForAgreement } from '../helpers/party.ts'
import { waitFor } from '../helpers/wait.ts'

const newParty = partiesForThisFile()

describe('tracker records', () => {
  it('are rebuilt from the manifests of the fragments when every replica lost them', { timeout: 120_000 }, async () => {
    const { party } = await newParty(5, ['--census-interval-ms', '1000', '--orphan-grace-ms', '1000'])
    const all = [0, 1, 2, 3, 4]
    await Promise.all(all.map((i) => party.start(i, i === 0 ? [] : [0])))
    await waitForAgreement(party, all, 5)
    const files = Array.from({ length: 12 }, (_, i) => ({ name: `records/${i}`, data: bytesOf(1000 + i * 70_001, i + 7) }))
    for (const f of files) assert.equal((await putBytes(party.peer(0).api, f.name, f.data)).status, 201)

    // Every peer dies at once and comes back without its tracker records: only the fragments remain.
    for (const i of all) party.signal(i, 'SIGKILL')
    for (const i of all) await party.exited(i)
    for (const i of all) for (const file of ['index.db', 'index.db-wal', 'index.db-shm']) await rm(join(party.peer(i).dataDir, file), { force: true })
    await Promise.all(all.map((i) => party.start(i, i === 0 ? [] : [0])))
    await waitForAgreement(party, all, 5)

    await waitFor(
      'every file tracked again',
      async () => {
        const res = await fetch(`http://${party.peer(3).api}/files`)
        const { files: listed } = (await res.json()) as { files: { name: string; health: string }[] }
        return listed.length === files.length && listed.every((f) => f.health === 'ok')
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    )
    let rebuilt = 0
    for (const i of all) rebuilt += await metric(party.peer(i).api, 'houseparty_tracker_records_rebuilt_total')
    assert.equal(rebuilt, files.length, 'one record rebuilt per file')
    for (const f of files) {
      const got = await getBytes(party.peer(1).api, f.name)
      assert.equal(got.status, 200)
      assert.equal(sha256(got.body), sha256(f.data))
    }
  })
})
