import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { LagMeter } from '../../../src/peer/membership/lag.ts'
import { MEMBERSHIP_FILE, MembershipFile } from '../../../src/peer/membership/persist.ts'
import { Requests } from '../../../src/peer/membership/requests.ts'
import type { Message } from '../../../src/peer/protocol/index.ts'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

describe('membership parts', () => {
  it('the lag meter reports the worst late tick of the last seconds, and a pause apart', () => {
    const lag = new LagMeter(50, 500, 2000)
    let t = 0
    /** Ticks `late` ms after the tick was due; returns the pause it reports, if any. */
    const tick = (late = 0): number | undefined => {
      t += 50 + late
      return lag.tick(t)
    }
    lag.tick(t)
    for (let i = 0; i < 20; i++) tick()
    assert.equal(lag.lag(t), 0)
    tick(120)
    assert.equal(lag.lag(t), 120, 'a tick 120 ms late')
    assert.equal(tick(3000), 3000, 'a tick 3 s late is a pause, reported as such')
    assert.equal(lag.lag(t), 120, 'and not counted as lag')
    assert.ok(lag.recentlyPaused(t))
    for (let i = 0; i < 300; i++) tick()
    assert.equal(lag.lag(t), 0, 'forgotten after the window')
    assert.ok(!lag.recentlyPaused(t))
  })

  it('requests are resent until answered, expire after their deadline, and a late reply finds nobody', () => {
    const sent: number[] = []
    const requests = new Requests((_to, msg) => sent.push((msg as { rid: number }).rid), 7)
    let answered = 0
    let timedOut = 0
    const make = (rid: number): Message => ({ type: 'knock', rid, address: '127.0.0.1:1' })
    const a = requests.send(
      'x:1',
      make,
      { timeoutMs: 1000, resendMs: 200 },
      0,
      () => answered++,
      () => timedOut++,
    )
    const b = requests.send(
      'x:2',
      make,
      { timeoutMs: 300 },
      0,
      () => answered++,
      () => timedOut++,
    )
    for (let t = 50; t <= 450; t += 50) requests.tick(t)
    assert.equal(sent.filter((r) => r === a).length, 3, 'sent at 0, resent at 200 and 400')
    assert.equal(sent.filter((r) => r === b).length, 1, 'no resend interval, no resend')
    assert.equal(timedOut, 1, 'b expired')
    assert.ok(requests.reply({ type: 'welcome', re: a, from: '0000000000000001', epoch: 1, guests: 1, coordinator: 'x:1' }, 'x:1'))
    assert.equal(answered, 1)
    assert.ok(!requests.reply({ type: 'welcome', re: a, from: '0000000000000001', epoch: 1, guests: 1, coordinator: 'x:1' }, 'x:1'), 'a duplicate reply')
    assert.equal(requests.size, 0)
  })

  it('the membership file round-trips, and a damaged one is ignored (the peer joins afresh)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'houseparty-membership-'))
    dirs.push(dir)
    const file = new MembershipFile(dir)
    assert.equal(file.load(), undefined)
    const state = {
      view: { epoch: 4, guests: [{ id: '0000000000000001', address: '127.0.0.1:7400', apiPort: 7480, incarnation: 2, since: 1 }] },
      floorEpoch: 4,
      acceptor: { baseEpoch: 4, promised: { round: 3, by: '0000000000000001' } },
    }
    file.save(state)
    assert.deepEqual(file.load(), state)
    await writeFile(join(dir, MEMBERSHIP_FILE), '{"view": 12')
    assert.equal(file.load(), undefined)
  })
})
