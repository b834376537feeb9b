import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { getBytes, putBytes } from '../helpers/files.ts'
import { guestsOf, metric, partiesForThisFile, sumMetric, waitForAgreement } from '../helpers/party.ts'
import { waitFor } from '../helpers/wait.ts'

const newParty = partiesForThisFile()

function bytesOf(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size)
  for (let i = 0; i < size; i++) out[i] = (i * 13 + seed * 101) & 0xff
  return out
}

/**
 * Turning encryption on in a running party, as an operator upgrading from a
 * release that spoke in clear does: every peer restarted on its data dir
 * with `--peer-encryption both` (sends encrypted, still takes clear), then
 * again with `on`. The party stays one, and every file reads back, at each
 * step; at the end a peer speaking in clear is not let in.
 */
describe('peer encryption turned on in a running party', () => {
  it('clear → both → on, one peer at a time: one party throughout, every file readable; then clear traffic is refused', async () => {
    const { party } = await newParty(5, ['--peer-encryption', 'clear', '--census-interval-ms', '1000'])
    const all = [0, 1, 2, 3]
    await Promise.all(all.map((i) => party.start(i, i === 0 ? [] : [0])))
    await waitForAgreement(party, all, 4, 30_000)
    const files = Array.from({ length: 8 }, (_, i) => ({ name: `enc/${i}`, data: bytesOf(20_000 + i * 50_000, i) }))
    for (const [i, f] of files.entries()) assert.equal((await putBytes(party.peer(i % 4).api, f.name, f.data)).status, 201)
    const readAll = async (via: number): Promise<void> => {
      for (const f of files) {
        const res = await getBytes(party.peer(via).api, f.name)
        assert.equal(res.status, 200, f.name)
        assert.ok(res.body.equals(f.data), `${f.name} reads back whole`)
      }
    }
    for (const mode of ['both', 'on']) {
      for (const i of all) {
        party.signal(i, 'SIGKILL')
        await party.exited(i)
        await party.start(i, [(i + 1) % 4], ['--peer-encryption', mode])
        await waitFor(
          `peer ${i} back with ${mode}, on the one list of 4`,
          async () => {
            const lists = await Promise.all(all.map((j) => guestsOf(party.peer(j).api).catch(() => undefined)))
            return lists.every((l) => l?.status === 'guest' && l.guests.length === 4 && l.epoch === lists[0]?.epoch)
          },
          { timeoutMs: 60_000, intervalMs: 200 },
        )
        await readAll((i + 2) % 4)
      }
    }
    // Every peer now takes encrypted traffic only: a newcomer speaking in clear is dropped and never let in.
    const before = await sumMetric(party, all, 'houseparty_udp_datagrams_dropped_total', 'reason="plain"')
    await party.start(4, [0], ['--peer-encryption', 'clear'])
    await waitFor(
      'its datagrams in clear to be dropped',
      async () => (await sumMetric(party, all, 'houseparty_udp_datagrams_dropped_total', 'reason="plain"')) > before,
      {
        timeoutMs: 30_000,
      },
    )
    assert.equal((await guestsOf(party.peer(0).api)).guests.length, 4)
    // Its datagrams can arrive before its API listens (on a loaded machine they do): read the metric once it answers.
    const admitted = await waitFor('the newcomer’s API to answer', () => metric(party.peer(4).api, 'houseparty_admitted').catch(() => undefined), {
      timeoutMs: 30_000,
    })
    assert.equal(admitted, 0)
    await readAll(0)
  })
})
