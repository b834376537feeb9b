import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { guestsOf, metric, partiesForThisFile, startParty, waitForAgreement } from '../helpers/party.ts'
import { waitFor } from '../helpers/wait.ts'

const newParty = partiesForThisFile()

describe('a party of real peer processes on 127.0.0.1', () => {
  it('5 peers join one by one and agree on one guest list', async () => {
    const { party, cleanup } = await newParty(5)
    for (let i = 0; i < 5; i++) {
      await party.start(i, i === 0 ? [] : [i - 1]) // each knocks on the one before it
      await waitForAgreement(party, [...Array(i + 1).keys()], i + 1)
    }
    const lists = await waitForAgreement(party, [0, 1, 2, 3, 4], 5)
    assert.equal(new Set(lists[0]?.guests.map((g) => g.id)).size, 5, 'ids are distinct')
    await cleanup()
  })

  it('10 peers started at the same moment through one door end in one party', async () => {
    const { party, cleanup } = await newParty(10)
    const lists = await startParty(party, 10, 30_000)
    assert.equal(new Set(lists[0]?.guests.map((g) => g.address)).size, 10)
    await cleanup()
  })

  it('peers started at the same moment through different doors end in one party', async () => {
    const { party, cleanup } = await newParty(10)
    for (const i of [0, 1, 2]) await party.start(i, i === 0 ? [] : [0])
    await waitForAgreement(party, [0, 1, 2], 3)
    await Promise.all([3, 4, 5, 6, 7, 8, 9].map((i) => party.start(i, [i % 3])))
    await waitForAgreement(party, [...Array(10).keys()], 10, 30_000)
    await cleanup()
  })

  it('a SIGKILLed peer is removed by every survivor', async () => {
    const { party, cleanup } = await newParty(5)
    const before = await startParty(party, 5)
    const victim = 2
    const victimId = before[victim]?.self
    const t0 = Date.now()
    party.signal(victim, 'SIGKILL')
    const afterKill = await waitForAgreement(party, [0, 1, 3, 4], 4, 15_000)
    const removalMs = Date.now() - t0
    assert.ok(!afterKill[0]?.guests.some((g) => g.id === victimId), 'the victim is gone from every list')
    console.log(`# SIGKILL to removal on every survivor: ${removalMs} ms`)
    assert.ok((await metric(party.peer(0).api, 'houseparty_membership_events_total', 'event="guest_removed"')) >= 1)
    await cleanup()
  })

  it('a SIGSTOPped peer is declared dead, and rejoins after SIGCONT', async () => {
    const { party, cleanup } = await newParty(4)
    await startParty(party, 4)
    const frozen = 3
    party.signal(frozen, 'SIGSTOP')
    await waitForAgreement(party, [0, 1, 2], 3, 15_000)
    party.signal(frozen, 'SIGCONT')
    const lists = await waitForAgreement(party, [0, 1, 2, 3], 4, 20_000)
    assert.ok(
      lists[3]?.guests.some((g) => g.id === lists[3]?.self),
      'the woken peer is on its own list again',
    )
    assert.ok((await metric(party.peer(frozen).api, 'houseparty_membership_events_total', 'event="removed_self"')) >= 1, 'it learned it was removed')
    await cleanup()
  })

  it('SIGTERM makes a peer leave at once, announced rather than detected', async () => {
    const { party, cleanup } = await newParty(4)
    await startParty(party, 4)
    for (const leaver of [0, 2]) {
      // 0 is the coordinator: its leave must be handled by the next in line.
      party.signal(leaver, 'SIGTERM')
      assert.equal(await party.exited(leaver, 10_000), 0, 'the leaver exits cleanly')
    }
    await waitForAgreement(party, [1, 3], 2, 5_000)
    const votes = await metric(party.peer(1).api, 'houseparty_membership_events_total', 'event="vote_dead"')
    assert.equal(votes, 0, 'nobody had to be voted dead: the leavers announced themselves')
    await cleanup()
  })

  it('a peer whose --join door is down keeps knocking and joins once it answers', async () => {
    const { party, cleanup } = await newParty(3)
    await party.start(1, [0]) // door 0 not started yet: peer 1 must not found its own party
    await waitFor('peer 1 to serve its API', () => guestsOf(party.peer(1).api))
    assert.equal((await guestsOf(party.peer(1).api)).guests.length, 0)
    await party.start(0, [])
    await waitForAgreement(party, [0, 1], 2, 20_000)
    await cleanup()
  })
})
