import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { getBytes, putBytes } from '../helpers/files.ts'
import { guestsOf, partiesForThisFile, partyHealth, sumMetric, waitForAgreement } from '../helpers/party.ts'
import { waitFor } from '../helpers/wait.ts'

const newParty = partiesForThisFile()

/** Deterministic contents, so a read back can be compared byte for byte. */
function bytesOf(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size)
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed * 7) & 0xff
  return out
}

interface Listed {
  name: string
  holders: { guest: string; live: boolean }[]
}

describe('failure domains on a local party', () => {
  it('places 2+1 files one fragment per zone, survives the loss of a zone, reports what it cannot spread, and spreads again when a zone joins', async () => {
    const { party } = await newParty(8, ['--census-interval-ms', '1000', '--rebuild-delay-ms', '2000', '--orphan-grace-ms', '2000'])
    const zoneOf = (i: number): string => (i >= 6 ? 'd' : (['a', 'b', 'c'][i % 3] as string))
    const start = (i: number, door = 0) => party.start(i, i === 0 ? [] : [door], ['--zone', zoneOf(i), '--node', `node-${i}`])
    await Promise.all([0, 1, 2, 3, 4, 5].map((i) => start(i)))
    await waitForAgreement(party, [0, 1, 2, 3, 4, 5], 6, 30_000)
    const api = party.peer(1).api

    const zones = new Map<string, string>()
    for (const g of (await guestsOf(api)).guests as { id: string; domains?: { zone?: string } }[]) zones.set(g.id, g.domains?.zone ?? '?')
    assert.deepEqual([...new Set(zones.values())].sort(), ['a', 'b', 'c'])

    const files = Array.from({ length: 24 }, (_, i) => ({ name: `zones/${i}`, data: bytesOf(i % 2 === 0 ? 3_000 + i : 300_000 + i, i) }))
    for (const [i, f] of files.entries()) assert.equal((await putBytes(party.peer(i % 6).api, f.name, f.data)).status, 201)

    const listing = async (): Promise<Listed[]> => {
      const res = await fetch(`http://${api}/files?prefix=zones/&limit=1000`, { signal: AbortSignal.timeout(10_000) })
      return ((await res.json()) as { files: Listed[] }).files
    }
    const zonesOfFile = (f: Listed): string[] => f.holders.map((h) => zones.get(h.guest) ?? '?').sort()
    for (const f of await listing()) assert.deepEqual(zonesOfFile(f), ['a', 'b', 'c'], `${f.name} is on one fragment per zone`)
    const before = await partyHealth(api)
    assert.deepEqual([before.atRisk.zone.files, before.atRisk.zone.domains, before.atRisk.node.files, before.atRisk.node.domains], [0, 3, 0, 6])

    // Zone a is lost: both of its peers at once. Every file reads back from the two zones left.
    party.signal(0, 'SIGKILL')
    party.signal(3, 'SIGKILL')
    for (const f of files) {
      const res = await getBytes(api, f.name)
      assert.equal(res.status, 200, f.name)
      assert.ok(res.body.equals(f.data), `${f.name} reads back whole`)
    }

    // Rebuilt onto the zones left: whole again, but two zones cannot hold 2+1 so that losing one loses nothing; health says so.
    await waitForAgreement(party, [1, 2, 4, 5], 4, 60_000)
    const degraded = await waitFor(
      'every file rebuilt, and the zone risk reported',
      async () => {
        const h = await partyHealth(api)
        return h.healthy === files.length && h.atRisk.zone.files > 0 && h
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    )
    assert.equal(degraded.atRisk.node.files, 0, 'no node holds two fragments of a file while there are nodes enough')
    assert.equal(degraded.atRisk.zone.domains, 2)
    // Every file has two fragments in one of the two zones: the worst zone holds two of some files.
    assert.ok(degraded.atRisk.zone.files >= files.length / 2, `${degraded.atRisk.zone.files} files at risk of zone ${degraded.atRisk.zone.worst}`)

    // A new zone joins: the census moves one fragment of every file there (copy, record, drop), and nothing is at risk again.
    await Promise.all([6, 7].map((i) => start(i, 1)))
    await waitForAgreement(party, [1, 2, 4, 5, 6, 7], 6, 30_000)
    for (const g of (await guestsOf(api)).guests as { id: string; domains?: { zone?: string } }[]) zones.set(g.id, g.domains?.zone ?? '?')
    await waitFor(
      'every file spread over three zones again',
      async () => {
        const h = await partyHealth(api)
        if (h.atRisk.zone.files !== 0 || h.healthy !== files.length) return false
        return (await listing()).every((f) => new Set(zonesOfFile(f)).size === 3)
      },
      { timeoutMs: 120_000, intervalMs: 1_000 },
    )
    const moved = await sumMetric(party, [1, 2, 4, 5, 6, 7], 'houseparty_fragments_moved_total', 'reason="spread"')
    assert.ok(moved >= files.length, `${moved} fragments moved for the spread`)
    for (const f of files) {
      const res = await getBytes(party.peer(6).api, f.name)
      assert.ok(res.body.equals(f.data), `${f.name} reads back whole after the moves`)
    }
    // Each peer's own count of files at risk is 0 too, after its next full pass.
    await waitFor(
      'houseparty_files_at_risk to be 0 for zones on every peer',
      async () => (await sumMetric(party, [1, 2, 4, 5, 6, 7], 'houseparty_files_at_risk', 'domain="zone"')) === 0,
      {
        timeoutMs: 60_000,
        intervalMs: 500,
      },
    )
  })
})
