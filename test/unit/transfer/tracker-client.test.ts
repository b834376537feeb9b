import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { Roster } from '../../../src/peer/membership/index.ts'
import type { PintServer } from '../../../src/peer/net/index.ts'
import type { FileRecord, Guest, GuestId } from '../../../src/peer/protocol/index.ts'
import { answerTracker, TrackerStore } from '../../../src/peer/tracker/index.ts'
import { TrackerClient } from '../../../src/peer/transfer/index.ts'
import { systemClock } from '../../../src/shared/clock.ts'
import { silentLogger } from '../../../src/shared/logger.ts'
import { testKey as key, testPintServer } from '../../helpers/pint.ts'
import { aRecord, moved } from '../../helpers/records.ts'

const dial = { key, clock: systemClock, connectTimeoutMs: 1000, idleTimeoutMs: 2000 }

const base = aRecord({ name: 'raced', revision: 3 })

describe('record changes decided by the primary tracker (real TCP, three replicas)', () => {
  const ids = ['0000000000000001', '4000000000000000', '8000000000000000'] as GuestId[]
  const stores: TrackerStore[] = []
  const servers: PintServer[] = []
  const guests: Guest[] = []
  let dir = ''
  let client: TrackerClient
  let roster: Roster

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hp-change-'))
    for (const id of ids) {
      const store = new TrackerStore(join(dir, id), silentLogger())
      await store.open()
      const server = testPintServer({
        idleTimeoutMs: 2000,
        handler: async (req, channel) => {
          if (req.op === 'watch' || req.op === 'where') await channel.reply(await answerTracker(req, store))
        },
      })
      await server.listen('127.0.0.1', 0)
      stores.push(store)
      servers.push(server)
      guests.push({ id, address: `127.0.0.1:${server.port}`, apiPort: 0, since: 0, incarnation: 1 })
    }
    roster = {
      selfId: ids[0],
      guests: () => guests,
      addressOf: (id) => guests.find((g) => g.id === id)?.address,
      domainsOf: () => undefined,
      uncertain: () => undefined,
    }
    client = new TrackerClient(roster, dial, 3)
  })
  after(async () => {
    await Promise.all(servers.map((s) => s.close()))
    await Promise.all(stores.map((s) => s.close()))
    await rm(dir, { recursive: true, force: true, maxRetries: 5 })
  })

  const replicas = (name: string): (FileRecord | undefined)[] => stores.map((s) => s.get(name))

  it('a read asks every guest before it calls a name missing: a record not yet handed to its tracker is found where it is', async () => {
    const single = new TrackerClient(roster, dial, 1)
    const record = aRecord({ name: 'handed-along' })
    const [tracker] = single.trackersOf(record.name)
    const elsewhere = ids.findIndex((id) => id !== tracker)
    stores[elsewhere]?.watch(record)
    assert.equal(stores[ids.indexOf(tracker as GuestId)]?.get(record.name), undefined, 'its tracker does not have it')
    assert.deepEqual(await single.where(record.name), record)
    assert.equal(await single.where('never/stored'), undefined, 'a name nobody has is missing')
  })

  it('of two changes from the same revision, the first to reach the primary wins, even against the tie-break', async () => {
    await client.watch(base)
    const one = moved(base, 0, '00000000000000dd')
    const two = moved(base, 1, '00000000000000ee')
    // Whichever the tie-break prefers goes second: a plain watch would let it replace the first.
    const [first, second] = one.fragments.map((f) => f.holder).join() < two.fragments.map((f) => f.holder).join() ? [one, two] : [two, one]
    const a = await client.change(first)
    const b = await client.change(second)
    assert.equal(a.won, true)
    assert.equal(b.won, false, 'the second change learns it lost')
    assert.deepEqual(b.current, first)
    assert.deepEqual(replicas(base.name), [first, first, first], 'every replica keeps the winner, none the loser')
    // Sent again (a lost reply), the winner still counts as won.
    assert.equal((await client.change(first)).won, true)
  })

  it('when changes race, exactly one wins and every replica agrees on it', async () => {
    for (let round = 0; round < 20; round++) {
      const name = `raced/${round}`
      const start = { ...base, name }
      await client.watch(start)
      // Sent in the tie-break's rising order, so arriving in order every one of them would supersede the last.
      const changes = [moved(start, 2, '00000000000000d3'), moved(start, 1, '00000000000000d2'), moved(start, 0, '00000000000000d1')]
      const outcomes = await Promise.all(changes.map((c) => client.change(c)))
      const winners = outcomes.filter((o) => o.won)
      assert.equal(winners.length, 1, `round ${round}: one winner`)
      for (const o of outcomes) assert.deepEqual(o.current, winners[0]?.current)
      assert.deepEqual(replicas(name), [winners[0]?.current, winners[0]?.current, winners[0]?.current])
    }
  })

  it('a change to an older version or an older revision is refused; a newer version is always taken', async () => {
    const name = 'versions'
    await client.watch({ ...base, name })
    assert.equal((await client.change({ ...base, name, revision: 2 })).won, false)
    const newer = { ...base, name, version: '0000000000002-00000000', revision: 0 }
    assert.equal((await client.change(newer)).won, true)
    assert.equal((await client.change(moved({ ...base, name }, 0, '00000000000000dd'))).won, false, 'a move of the replaced version loses')
  })
})
