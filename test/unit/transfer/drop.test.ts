import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { chunkChecksum, fragmentDigest } from '../../../src/peer/codec/index.ts'
import type { FilesContext } from '../../../src/peer/files/index.ts'
import { CallBatcher, call, type PintServer } from '../../../src/peer/net/index.ts'
import { type FileRecord, PintReplies } from '../../../src/peer/protocol/index.ts'
import { copyNeeded } from '../../../src/peer/recovery/index.ts'
import { FragmentStore } from '../../../src/peer/store/index.ts'
import { TrackerStore } from '../../../src/peer/tracker/index.ts'
import { type DropQuery, pintRouter } from '../../../src/peer/transfer/index.ts'
import { systemClock } from '../../../src/shared/clock.ts'
import { HousePartyError } from '../../../src/shared/errors.ts'
import { silentLogger } from '../../../src/shared/logger.ts'
import { testKey as key, testPintServer } from '../../helpers/pint.ts'
import { aRecord } from '../../helpers/records.ts'

const dial = { key, clock: systemClock, connectTimeoutMs: 2000, idleTimeoutMs: 5000 }
const coding = { k: 2, m: 1, stripeBytes: 4 * 1024 * 1024 }
const version = '0000000001000-0000abcd'

describe('a drop, on the holder', () => {
  let dir = ''
  let store: FragmentStore
  let trackers: TrackerStore
  let server: PintServer
  let address = ''
  let refused = 0
  /** What the holder's check says of each drop (by name). */
  const neededNames = new Set<string>()
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hp-drop-'))
    store = new FragmentStore(join(dir, 'store'), silentLogger())
    await store.open()
    trackers = new TrackerStore(join(dir, 'trackers'), silentLogger())
    await trackers.open()
    const events = { received: () => undefined, sent: () => undefined, dropRefused: () => void refused++ }
    server = testPintServer({ handler: pintRouter({ store, trackers, events, needed: async (q: DropQuery) => neededNames.has(q.name) }) })
    await server.listen('127.0.0.1', 0)
    address = `127.0.0.1:${server.port}`
  })
  after(async () => {
    await server.close()
    await trackers.close()
    await store.close()
    await rm(dir, { recursive: true, force: true, maxRetries: 5 })
  })

  const stash = async (name: string): Promise<void> => {
    const data = Buffer.alloc(1000, 3)
    const checksum = chunkChecksum(data)
    const trailer = { size: 2000, hash: 'a'.repeat(64), created: 1, digest: fragmentDigest([checksum.toString('hex')]) }
    const batcher = new CallBatcher({ dial, inFlight: 1 })
    await batcher.call(address, { op: 'stash', name, version, index: 0, coding, trailer }, PintReplies.stash, undefined, { data, checksum })
  }
  const drop = (name: string) => call(address, { op: 'drop', name, version, index: 0 }, PintReplies.drop, dial)

  it('keeps a copy the newest record counts on, answers that nothing was dropped, and counts the refusal', async () => {
    await stash('kept')
    neededNames.add('kept')
    assert.deepEqual(await drop('kept'), { ok: true, dropped: 0 })
    assert.equal(store.has({ name: 'kept', version, index: 0 }), true)
    assert.equal(refused, 1)
  })

  it('deletes a copy no record counts on', async () => {
    await stash('gone')
    assert.deepEqual(await drop('gone'), { ok: true, dropped: 1 })
    assert.equal(store.has({ name: 'gone', version, index: 0 }), false)
  })
})

describe('whether the newest record counts on this peer’s copy', () => {
  const self = '00000000000000aa'
  const contextWith = (where: () => Promise<FileRecord | undefined>): FilesContext =>
    ({ roster: { selfId: self }, trackers: { where } }) as unknown as FilesContext
  const record = aRecord({ name: 'f', version })
  const ask = (ctx: FilesContext, index?: number): Promise<boolean> => copyNeeded(ctx, { name: 'f', version, ...(index === undefined ? {} : { index }) })

  it('yes for the index the record places here (or any, for a drop of every index); no for another', async () => {
    const ctx = contextWith(async () => record)
    assert.equal(await ask(ctx, 0), true)
    assert.equal(await ask(ctx), true)
    assert.equal(await ask(ctx, 1), false, 'fragment 1 is recorded on another guest: this copy is an extra one')
  })

  it('no for another version, a deleted file or a name no tracker knows', async () => {
    assert.equal(
      await ask(
        contextWith(async () => ({ ...record, version: '0000000002000-0000abcd' })),
        0,
      ),
      false,
    )
    assert.equal(
      await ask(
        contextWith(async () => ({ ...record, deleted: true })),
        0,
      ),
      false,
    )
    assert.equal(
      await ask(
        contextWith(async () => undefined),
        0,
      ),
      false,
    )
  })

  it('yes when no tracker answers: a copy kept by mistake can be dropped later, one deleted cannot come back', async () => {
    const ctx = contextWith(async () => {
      throw new HousePartyError('ERR_NOT_ENOUGH_PEERS', 'none of the trackers answered')
    })
    assert.equal(await ask(ctx, 0), true)
  })
})
