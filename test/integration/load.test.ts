import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { describe, it } from 'node:test'
import { guestsOf, metric, partiesForThisFile, startParty } from '../helpers/party.ts'

const newParty = partiesForThisFile()

describe('failure detection under load', () => {
  it('live peers on a machine with every core saturated are not declared dead', async () => {
    const { party, cleanup } = await newParty(5)
    const before = await startParty(party, 5)
    // Twice as many spinning processes as cores, for 8 seconds.
    const burnMs = 8_000
    const burners = Array.from({ length: 4 }, () =>
      spawn(process.execPath, ['-e', `const end = Date.now() + ${burnMs}; while (Date.now() < end) Math.sqrt(Math.random())`], { stdio: 'ignore' }),
    )
    await Promise.all(burners.map((b) => new Promise((r) => b.once('exit', r))))
    const lists = await Promise.all([0, 1, 2, 3, 4].map((i) => guestsOf(party.peer(i).api)))
    for (const l of lists) {
      assert.equal(l.guests.length, 5)
      assert.equal(l.epoch, before[0]?.epoch, 'no membership change happened')
    }
    let suspicions = 0
    for (const i of [0, 1, 2, 3, 4]) {
      assert.equal(await metric(party.peer(i).api, 'houseparty_membership_events_total', 'event="vote_dead"'), 0)
      suspicions += await metric(party.peer(i).api, 'houseparty_membership_events_total', 'event="suspected"')
    }
    console.log(`# ${burnMs} ms with 4 CPU burners on ${party.peers.length} peers: ${suspicions} suspicions, 0 removals`)
    await cleanup()
  })
})
