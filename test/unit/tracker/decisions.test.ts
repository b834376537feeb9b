import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { TrackerStore } from '../../../src/peer/tracker/index.ts'
import { isHousePartyError } from '../../../src/shared/errors.ts'
import { silentLogger } from '../../../src/shared/logger.ts'
import { aRecord } from '../../helpers/records.ts'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true, maxRetries: 5 })
})

describe('a tracker that holds its decisions back', () => {
  it('refuses changes it would decide (repairs, moves) while its picture may be stale, and still takes puts and handoffs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'houseparty-decisions-'))
    dirs.push(dir)
    let held: string | undefined = 'it was paused lately'
    const store = new TrackerStore(dir, silentLogger(), { decisionsHeld: () => held })
    await store.open()
    const put = aRecord({ name: 'held', revision: 0 })
    assert.equal(store.watch(put).accepted, true, 'a put is recorded: every replica takes it, nobody decides it')
    const moved = { ...put, revision: 1, fragments: put.fragments.map((f) => (f.index === 0 ? { ...f, holder: '00000000000000dd' } : f)) }
    assert.throws(
      () => store.watch(moved, { exclusive: true }),
      (err: unknown) => isHousePartyError(err, 'ERR_NOT_ENOUGH_PEERS') && /was paused lately/.test((err as Error).message),
      'a change to decide is refused, saying why',
    )
    assert.equal(store.get('held')?.revision, 0, 'and nothing of it was kept')
    assert.equal(store.watch(moved).accepted, true, 'the same change told by the primary that decided it is taken')
    held = undefined
    const next = { ...moved, revision: 2 }
    assert.equal(store.watch(next, { exclusive: true }).accepted, true, 'decided again once the picture is current')
    await store.close()
  })
})
