import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { TrackerStore } from '../../../src/peer/tracker/index.ts'
import { silentLogger } from '../../../src/shared/logger.ts'
import { aRecord } from '../../helpers/records.ts'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true, maxRetries: 5 })
})

describe('put intents at a tracker', () => {
  it('a put that finishes first hears that a put which began after it will win', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'houseparty-intents-'))
    dirs.push(dir)
    let now = 1_000_000
    const store = new TrackerStore(dir, silentLogger(), { now: () => now })
    await store.open()
    const older = '1700000000000-aaaaaaaa'
    const newer = '1700000000005-bbbbbbbb'
    assert.equal(store.intend('race', older), undefined, 'nobody else is putting')
    assert.equal(store.intend('race', newer), older, 'the second put hears of the first')
    const first = store.watch(aRecord({ name: 'race', version: older }))
    assert.equal(first.accepted, true)
    assert.equal(first.newer, true, 'recorded, but a newer put is under way')
    const second = store.watch(aRecord({ name: 'race', version: newer }))
    assert.deepEqual([second.accepted, second.newer], [true, false], 'the last one stays')
    const late = store.watch(aRecord({ name: 'race', version: '1700000000003-dddddddd' }))
    assert.deepEqual([late.accepted, late.newer], [false, true], 'an older version arriving late: a newer one is recorded')
    assert.equal(store.intend('race', '1700000000009-cccccccc'), undefined, 'recorded puts are no longer pending')
    now += 31 * 60_000
    assert.equal(store.watch(aRecord({ name: 'race', version: '1700000000008-eeeeeeee' })).newer, false, 'a put that never finished is forgotten in time')
    assert.equal(store.intend('other', '1700000000001-eeeeeeee'), undefined, 'intents are per name')
    await store.close()
  })
})
