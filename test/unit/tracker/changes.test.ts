import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { bucketOf, ringPosition } from '../../../src/peer/ring/index.ts'
import { ChangeLog } from '../../../src/peer/tracker/changes.ts'
import { TrackerStore } from '../../../src/peer/tracker/index.ts'
import { silentLogger } from '../../../src/shared/logger.ts'
import { allRecords, aRecord } from '../../helpers/records.ts'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true, maxRetries: 5 })
})

describe('the change log of a tracker', () => {
  it('keeps each name once, with its record before the first change since the last take', () => {
    const log = new ChangeLog(10)
    const first = aRecord({ name: 'a', version: '0000000000001-00000000' })
    log.note('a', first)
    log.note('a', aRecord({ name: 'a', version: '0000000000002-00000000' }))
    log.note('b', undefined)
    assert.deepEqual(
      [...(log.take() ?? [])],
      [
        ['a', first],
        ['b', undefined],
      ],
    )
    assert.deepEqual([...(log.take() ?? [])], [])
  })

  it('says it overflowed rather than keep more names than its limit, and starts afresh once taken', () => {
    const log = new ChangeLog(3)
    for (const name of ['a', 'b', 'c', 'd']) log.note(name, undefined)
    assert.equal(log.take(), undefined)
    log.note('e', undefined)
    assert.deepEqual([...(log.take() ?? []).keys()], ['e'])
  })

  it('logs the puts, replacements and forgets of a tracker store, and reads the records of a run of ring buckets', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hp-changes-'))
    dirs.push(dir)
    const store = new TrackerStore(dir, silentLogger())
    await store.open()
    const old = aRecord({ name: 'kept', version: '0000000000001-00000000' })
    store.watch(old)
    for (let i = 0; i < 200; i++) store.watch(aRecord({ name: `n/${i}` }))
    store.takeChanges()
    store.watch(aRecord({ name: 'kept', version: '0000000000002-00000000' }))
    store.watch(aRecord({ name: 'new' }))
    store.forget('n/7')
    // A record that does not supersede the current one changes nothing and is not logged.
    store.watch(aRecord({ name: 'n/8', version: '0000000000000-00000000' }))
    assert.deepEqual(
      [...(store.takeChanges() ?? [])].map(([name, before]) => [name, before?.version]),
      [
        ['kept', old.version],
        ['new', undefined],
        ['n/7', aRecord().version],
      ],
    )
    const names = (await allRecords(store)).map((r) => r.name)
    for (const [from, to] of [
      [0, 65535],
      [0x1000, 0x7fff],
      [0xfff0, 0xffff],
      [0x4000, 0x4000],
    ] as const) {
      const want = names.filter((n) => bucketOf(ringPosition(n)) >= from && bucketOf(ringPosition(n)) <= to).sort()
      assert.deepEqual([...store.inBuckets(from, to)].map((r) => r.name).sort(), want)
    }
    await store.close()
  })
})
