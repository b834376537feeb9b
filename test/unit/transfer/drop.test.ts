import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { FilesContext } from '../../../src/peer/files/index.ts'
import { CallBatcher, call } from '../../../src/peer/net/index.ts'
import { type FileRecord, PintReplies } from '../../../src/peer/protocol/index.ts'
import { copyNeeded } from '../../../src/peer/recovery/index.ts'
import { systemClock } from '../../../src/shared/clock.ts'
import { HousePartyError } from '../../../src/shared/errors.ts'
import { type ServedHolder, servedHolder, stashOf } from '../../helpers/holder.ts'
import { testKey as key } from '../../helpers/pint.ts'
import { aRecord } from '../../helpers/records.ts'

const dial = { key, clock: systemClock, connectTimeoutMs: 2000, idleTimeoutMs: 5000 }
const version = '0000000001000-0000abcd'

describe('a drop, on the holder', () => {
  let holder: ServedHolder
  let refused = 0
  /** What the holder's check says of each drop (by name). */
  const neededNames = new Set<string>()
  before(async () => {
    holder = await servedHolder({ events: { dropRefused: () => void refused++ }, needed: async (q) => neededNames.has(q.name) })
  })
  after(() => holder.close())

  const stash = async (name: string): Promise<void> => {
    const { body, chunk } = stashOf(name, version, Buffer.alloc(1000, 3))
    await new CallBatcher({ dial, inFlight: 1 }).call(holder.address, body, PintReplies.stash, undefined, chunk)
  }
  const drop = (name: string) => call(holder.address, { op: 'drop', name, version, index: 0 }, PintReplies.drop, dial)

  it('keeps a copy the newest record counts on, answers that nothing was dropped, and counts the refusal', async () => {
    await stash('kept')
    neededNames.add('kept')
    assert.deepEqual(await drop('kept'), { ok: true, dropped: 0 })
    assert.equal(holder.store.has({ name: 'kept', version, index: 0 }), true)
    assert.equal(refused, 1)
  })

  it('deletes a copy no record counts on', async () => {
    await stash('gone')
    assert.deepEqual(await drop('gone'), { ok: true, dropped: 1 })
    assert.equal(holder.store.has({ name: 'gone', version, index: 0 }), false)
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
