import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decideChaos, decideScaling, summarize } from '../../../src/operator/index.ts'
import type { PartySeen, PodSeen } from '../../../src/operator/party.ts'
import type { HousePartySpec, PartyCrasherSpec, PartyCrasherStatus } from '../../../src/operator/resources.ts'

const GiB = 2 ** 30
const pods = (n: number, patch: Partial<PodSeen> = {}): PodSeen[] =>
  Array.from({ length: n }, (_, i) => ({
    name: `hp-${i}`,
    uid: `uid-${i}`,
    ordinal: i,
    ready: true,
    terminating: false,
    container: 'houseparty',
    restarts: 0,
    ...patch,
  }))
const party = (n: number, heldEach: number | null, patch: Partial<PartySeen> = {}): PartySeen => ({
  guests: Array.from({ length: n }, (_, i) => ({ id: `g${i}`, address: `hp-${i}.hp-peers.ns.svc.cluster.local:7400`, incarnation: 1, heldBytes: heldEach })),
  files: 10,
  degraded: 0,
  lost: 0,
  answered: n,
  ...patch,
})
const spec = (patch: Partial<HousePartySpec> = {}): HousePartySpec => ({
  statefulSet: 'hp',
  apiPort: 7480,
  minGuests: 3,
  maxGuests: 8,
  targetFill: 0.7,
  reclaim: 'Retain',
  paused: false,
  ...patch,
})
const coding = { k: 2, m: 1 }
const scaling = (n: number, heldEach: number | null, patch: Partial<Parameters<typeof decideScaling>[0]> = {}) =>
  decideScaling({ spec: spec(), coding, replicas: n, pods: pods(n), party: party(n, heldEach), capacityBytes: GiB, claims: [], ...patch })

describe('scaling decisions', () => {
  it('holds while paused, and refuses a maxGuests below k+m or minGuests', () => {
    assert.equal(scaling(5, GiB, { spec: spec({ paused: true }) }).kind, 'Hold')
    const bad = scaling(5, 0, { spec: spec({ minGuests: 6, maxGuests: 5 }) })
    assert.equal(bad.kind, 'Hold')
    assert.match(bad.reason, /maxGuests 5 is below/)
  })

  it('waits while pods come, go or start, while the party does not answer, or its guest list differs from the StatefulSet', () => {
    assert.equal(scaling(5, 0, { pods: pods(4) }).kind, 'Wait')
    assert.equal(scaling(5, 0, { pods: [...pods(4), { ...pods(5)[4], terminating: true } as PodSeen] }).kind, 'Wait')
    assert.equal(scaling(5, 0, { pods: pods(5, { ready: false }) }).kind, 'Wait')
    assert.equal(scaling(5, 0, { party: undefined }).kind, 'Wait')
    assert.equal(scaling(5, 0, { party: party(4, 0) }).kind, 'Wait')
  })

  it('scales up to the minimum, then by fill: at least one more, enough to bring fill under the target, never past maxGuests', () => {
    assert.deepEqual(scaling(2, 0, { spec: spec({ minGuests: 4 }) }), { kind: 'Scale', replicas: 4, reason: '2 peers, below the minimum of 4' })
    const up = scaling(4, 0.75 * GiB)
    assert.equal(up.kind, 'Scale')
    assert.equal(up.kind === 'Scale' && up.replicas, 5)
    const far = scaling(4, 1.0 * GiB) // 4 GiB held needs ceil(4 / 0.7) = 6 peers
    assert.equal(far.kind === 'Scale' && far.replicas, 6)
    const capped = scaling(4, 3 * GiB)
    assert.equal(capped.kind === 'Scale' && capped.replicas, 8)
    assert.equal(scaling(8, 0.9 * GiB, { spec: spec({ maxGuests: 8 }) }).kind, 'Hold')
  })

  it('scales down one peer at a time, only when fully healthy and one less would stay well under the target; never below k+m', () => {
    const down = scaling(6, 0.1 * GiB)
    assert.equal(down.kind, 'Scale')
    assert.equal(down.kind === 'Scale' && down.replicas, 5)
    assert.equal(scaling(6, 0.1 * GiB, { party: party(6, 0.1 * GiB, { degraded: 1 }) }).kind, 'Hold')
    assert.equal(scaling(6, 0.1 * GiB, { party: party(6, 0.1 * GiB, { answered: 5 }) }).kind, 'Hold')
    // 6 × 0.5 GiB = 3 GiB on 5 peers is 60% > 0.8 × 70%: stay.
    assert.equal(scaling(6, 0.5 * GiB).kind, 'Hold')
    assert.equal(scaling(3, 0, { spec: spec({ minGuests: 1 }) }).kind, 'Hold', 'k+m = 3 is the floor')
    const above = scaling(9, 0, { spec: spec({ maxGuests: 8 }) })
    assert.equal(above.kind === 'Scale' && above.replicas, 8)
  })

  it('waits until every guest has said what it holds, and holds when the volume size is unknown', () => {
    assert.equal(scaling(5, null).kind, 'Wait')
    assert.equal(scaling(5, 0, { capacityBytes: undefined }).kind, 'Hold')
  })

  it('reclaims the claim of a peer that left, only with reclaim Delete and once the party is whole without it', () => {
    const claims = [
      { name: 'data-hp-0', ordinal: 0 },
      { name: 'data-hp-5', ordinal: 5 },
      { name: 'data-hp-6', ordinal: 6 },
    ]
    const del = scaling(5, 0.5 * GiB, { claims, spec: spec({ reclaim: 'Delete' }) })
    assert.deepEqual(del.kind === 'DeleteClaim' && del.claim, 'data-hp-5')
    assert.notEqual(scaling(5, 0.5 * GiB, { claims }).kind, 'DeleteClaim', 'Retain keeps it')
    assert.notEqual(scaling(5, 0.5 * GiB, { claims, spec: spec({ reclaim: 'Delete' }), party: party(5, 0.5 * GiB, { degraded: 2 }) }).kind, 'DeleteClaim')
  })
})

const crasher = (patch: Partial<PartyCrasherSpec> = {}): PartyCrasherSpec => ({
  statefulSet: 'hp',
  apiPort: 7480,
  action: 'DeletePod',
  count: 1,
  rounds: 2,
  intervalSeconds: 10,
  allowDataLoss: false,
  paused: false,
  sampleFiles: 5,
  roundTimeoutSeconds: 600,
  durationSeconds: 20,
  ...patch,
})
const NOW = Date.parse('2026-11-26T12:00:00Z')
const chaos = (status: PartyCrasherStatus, patch: Partial<Parameters<typeof decideChaos>[0]> = {}) =>
  decideChaos({ spec: crasher(), status, coding, replicas: 5, pods: pods(5), party: party(5, 0), now: NOW, random: () => 0.5, ...patch })
const at = (msAgo: number): string => new Date(NOW - msAgo).toISOString()

describe('chaos decisions', () => {
  it('refuses more than m at once without allowDataLoss, and never every peer', () => {
    const refused = chaos({}, { spec: crasher({ count: 2 }) })
    assert.equal(refused.kind, 'Refuse')
    assert.match(refused.kind === 'Refuse' ? refused.message : '', /more than m = 1/)
    assert.equal(chaos({}, { spec: crasher({ count: 2, allowDataLoss: true }) }).kind, 'StartRound')
    assert.equal(chaos({}, { spec: crasher({ count: 5, allowDataLoss: true }) }).kind, 'Refuse')
  })

  it('deletes every peer pod of one node in a DeleteNode round, and refuses where the nodes are too few to survive one', () => {
    // 6 peers on 3 nodes, two each.
    const onNodes = pods(6).map((p, i) => ({ ...p, node: `node-${i % 3}` }))
    const nodeRound = (patch: Partial<Parameters<typeof decideChaos>[0]> = {}) =>
      chaos({}, { spec: crasher({ action: 'DeleteNode', count: 1 }), replicas: 6, pods: onNodes, party: party(6, 0), ...patch })
    const start = nodeRound()
    assert.equal(start.kind, 'StartRound')
    if (start.kind !== 'StartRound') return
    assert.equal(start.current.node, 'node-1')
    assert.deepEqual(
      start.current.targets.map((t) => t.pod),
      ['hp-1', 'hp-4'],
    )
    // Two nodes cannot keep 2+1 files within one fragment per node: refused unless data loss is allowed.
    const twoNodes = pods(6).map((p, i) => ({ ...p, node: `node-${i % 2}` }))
    const refused = nodeRound({ pods: twoNodes })
    assert.equal(refused.kind, 'Refuse')
    assert.match(refused.kind === 'Refuse' ? refused.message : '', /at least 3 nodes/)
    assert.equal(nodeRound({ pods: twoNodes, spec: crasher({ action: 'DeleteNode', allowDataLoss: true }) }).kind, 'StartRound')
    const oneNode = pods(6).map((p) => ({ ...p, node: 'node-0' }))
    assert.equal(nodeRound({ pods: oneNode, spec: crasher({ action: 'DeleteNode', allowDataLoss: true }) }).kind, 'Refuse')
    // 4+2 on 3 nodes survives one (at most 2 per node), whatever the count says.
    assert.equal(nodeRound({ coding: { k: 4, m: 2 }, spec: crasher({ action: 'DeleteNodeAndVolumes', count: 3 }) }).kind, 'StartRound')
    assert.equal(nodeRound({ pods: onNodes.map((p, i) => (i === 5 ? { ...p, node: undefined } : p)) as typeof onNodes }).kind, 'Wait')
  })

  it('starts a round on a fully redundant party only, with targets that are guests, recorded by UID and incarnation', () => {
    const start = chaos({})
    assert.equal(start.kind, 'StartRound')
    if (start.kind !== 'StartRound') return
    assert.equal(start.current.round, 1)
    assert.equal(start.current.stage, 'Crashing')
    assert.deepEqual(start.current.targets, [{ pod: 'hp-2', uid: 'uid-2', guest: 'g2', incarnation: 1, restarts: 0 }])
    assert.equal(chaos({}, { party: party(5, 0, { degraded: 1 }) }).kind, 'Wait')
    assert.equal(chaos({}, { pods: pods(5, { ready: false }) }).kind, 'Wait')
    assert.equal(chaos({}, { party: party(4, 0) }).kind, 'Wait')
  })

  it('waits out the interval between rounds, honours pause, and completes with a summary', () => {
    const one = {
      round: 1,
      targets: ['hp-1'],
      startedAt: at(60_000),
      deathDeclaredSeconds: 1.5,
      fullRedundancySeconds: 7,
      filesLost: 0,
      filesUnreadable: 0,
      outcome: 'Recovered' as const,
    }
    assert.equal(chaos({ rounds: [one], lastRoundEndedAt: at(2_000) }).kind, 'Wait')
    assert.equal(chaos({ rounds: [one], lastRoundEndedAt: at(20_000) }).kind, 'StartRound')
    assert.equal(chaos({ rounds: [one] }, { spec: crasher({ paused: true }) }).kind, 'Pause')
    const done = chaos({ rounds: [one, { ...one, round: 2, fullRedundancySeconds: 9 }] })
    assert.deepEqual(done.kind === 'Complete' && done.summary, {
      rounds: 2,
      medianDeathDeclaredSeconds: 1.5,
      medianFullRedundancySeconds: 8,
      filesLost: 0,
      filesUnreadable: 0,
    })
    assert.equal(chaos({ phase: 'Completed' }).kind, 'Done')
  })

  it('walks a round through crash, death declared and full redundancy, timing each from the crash', () => {
    const targets = [{ pod: 'hp-2', uid: 'uid-2', guest: 'g2', incarnation: 1 }]
    const current = { round: 1, targets, startedAt: at(3_000) }
    assert.deepEqual(chaos({ current: { ...current, stage: 'Crashing' } }), { kind: 'Crash', targets })
    // Still on the guest list under the same incarnation: not noticed yet.
    assert.equal(chaos({ current: { ...current, stage: 'WaitingForDeath' } }).kind, 'Wait')
    const gone = party(5, 0)
    gone.guests = gone.guests.filter((g) => g.id !== 'g2')
    assert.deepEqual(chaos({ current: { ...current, stage: 'WaitingForDeath' } }, { party: gone }), { kind: 'DeathDeclared', seconds: 3 })
    const rejoined = party(5, 0)
    ;(rejoined.guests[2] as { incarnation: number }).incarnation = 2
    assert.equal(chaos({ current: { ...current, stage: 'WaitingForDeath' } }, { party: rejoined }).kind, 'DeathDeclared', 'a new incarnation counts')
    assert.equal(chaos({ current: { ...current, stage: 'WaitingForRedundancy' } }, { party: gone }).kind, 'Wait')
    assert.deepEqual(chaos({ current: { ...current, stage: 'WaitingForRedundancy' } }), { kind: 'Recovered', seconds: 3 })
    assert.equal(
      chaos({ current: { ...current, stage: 'WaitingForRedundancy' } }, { party: party(5, 0, { lost: 2 }) }).kind,
      'Recovered',
      'lost files never come back',
    )
    assert.equal(chaos({ current: { ...current, stage: 'WaitingForRedundancy', startedAt: at(601_000) } }).kind, 'TimedOut')
  })

  it('holds a freeze or a network cut for its duration, noting a death declared meanwhile, then always undoes it', () => {
    const targets = [{ pod: 'hp-2', uid: 'uid-2', guest: 'g2', incarnation: 1 }]
    const freeze = { spec: crasher({ action: 'Freeze', durationSeconds: 20 }) }
    const holding = (msAgo: number, extra = {}) => ({ current: { round: 1, targets, startedAt: at(msAgo), stage: 'Holding' as const, ...extra } })
    assert.deepEqual(chaos({ current: { round: 1, targets, startedAt: at(0), stage: 'Crashing' } }, freeze), { kind: 'Crash', targets })
    const waiting = chaos(holding(5_000), freeze)
    assert.equal(waiting.kind, 'Wait')
    assert.match(waiting.kind === 'Wait' ? waiting.reason : '', /held for 15 s more/)
    const gone = party(5, 0)
    gone.guests = gone.guests.filter((g) => g.id !== 'g2')
    assert.deepEqual(chaos(holding(5_000), { ...freeze, party: gone }), { kind: 'DeathDeclaredWhileHeld', seconds: 5 })
    assert.equal(chaos(holding(6_000, { deathDeclaredSeconds: 5 }), { ...freeze, party: gone }).kind, 'Wait', 'recorded once')
    assert.deepEqual(chaos(holding(20_000), freeze), { kind: 'HoldEnded', deathDeclaredSeconds: undefined }, 'a pause the party rode out')
    assert.deepEqual(chaos(holding(21_000, { deathDeclaredSeconds: 5 }), freeze), { kind: 'HoldEnded', deathDeclaredSeconds: 5 })
    // Releasing comes before any timeout: a frozen or cut-off peer is never left so.
    const late = { current: { round: 1, targets, startedAt: at(3_600_000), stage: 'Releasing' as const } }
    assert.deepEqual(chaos(late, { spec: crasher({ action: 'CutNetwork' }) }), { kind: 'Release', targets })
    const refused = chaos({}, { spec: crasher({ action: 'Freeze', durationSeconds: 600, roundTimeoutSeconds: 600 }) })
    assert.match(refused.kind === 'Refuse' ? refused.message : '', /no time to recover/)
    assert.equal(
      chaos({}, { spec: crasher({ action: 'DeletePod', durationSeconds: 600, roundTimeoutSeconds: 600 }) }).kind,
      'StartRound',
      'only timed faults last',
    )
  })

  it('summarizes rounds without figures as unknown, and sums what was lost', () => {
    assert.deepEqual(summarize([]), { rounds: 0, filesLost: 0, filesUnreadable: 0 })
    assert.deepEqual(summarize([{ round: 1, targets: [], startedAt: at(0), filesLost: 2, filesUnreadable: 1, outcome: 'TimedOut' }]), {
      rounds: 1,
      filesLost: 2,
      filesUnreadable: 1,
    })
  })
})
