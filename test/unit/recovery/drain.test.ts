import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { chunkChecksum, fragmentDigest, splitStripe } from '../../../src/peer/codec/index.ts'
import type { FilesContext } from '../../../src/peer/files/index.ts'
import type { FileRecord, GuestId } from '../../../src/peer/protocol/index.ts'
import { drain } from '../../../src/peer/recovery/index.ts'
import { FragmentStore } from '../../../src/peer/store/index.ts'
import type { TrackerStore } from '../../../src/peer/tracker/index.ts'
import { systemClock } from '../../../src/shared/clock.ts'
import { HousePartyError } from '../../../src/shared/errors.ts'
import { silentLogger } from '../../../src/shared/logger.ts'
import { waitFor } from '../../helpers/wait.ts'

const coding = { k: 2, m: 1, stripeBytes: 4096 }
const version = '0000000001000-0000abcd'
const self = 'a'.repeat(16) as GuestId
const others = ['b'.repeat(16), 'c'.repeat(16), 'd'.repeat(16), 'e'.repeat(16)] as GuestId[]
const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true, maxRetries: 5 })
})

async function openStore(dir?: string, now?: () => number): Promise<FragmentStore> {
  const at = dir ?? (await mkdtemp(join(tmpdir(), 'hp-drain-')))
  if (!dir) dirs.push(at)
  const store = new FragmentStore(at, silentLogger(), now)
  await store.open()
  return store
}

/** Starts writing fragment 0 of `name` (one 100-byte chunk); `commit()` makes it durable. */
async function receive(store: FragmentStore, name: string): Promise<{ digest: string; commit(): Promise<unknown> }> {
  const writer = await store.beginWrite({ name, version, index: 0 }, coding)
  const shard = splitStripe(Buffer.alloc(100, 7), 2)[0] as Buffer
  const checksum = chunkChecksum(shard)
  await writer.append(shard, checksum)
  const digest = fragmentDigest([checksum.toString('hex')])
  return { digest, commit: () => writer.commit({ size: 100, hash: 'f'.repeat(64), created: 1, digest }) }
}

function recordOf(name: string, digest: string): FileRecord {
  return {
    ...{ name, version, revision: 0, deleted: false, size: 100, hash: 'f'.repeat(64), created: 1, coding },
    fragments: [
      { index: 0, holder: self, digest },
      { index: 1, holder: others[0] as GuestId, digest },
      { index: 2, holder: others[1] as GuestId, digest },
    ],
  }
}

/** A party of fakes around a real store: trackers keep records in a map, transfers always succeed. */
function partyAround(store: FragmentStore, records: Map<string, FileRecord>): { ctx: FilesContext; movedTo: Map<string, GuestId>; asked: string[] } {
  const movedTo = new Map<string, GuestId>()
  const asked: string[] = []
  const ctx = {
    roster: {
      selfId: self,
      guests: () => [self, ...others].map((id) => ({ id })),
      addressOf: () => '10.0.0.1:1',
      domainsOf: () => undefined,
      uncertain: () => undefined,
    },
    trackers: {
      where: async (name: string) => {
        asked.push(name)
        return records.get(name)
      },
      change: async (next: FileRecord) => {
        records.set(next.name, next)
        movedTo.set(next.name, next.fragments[0]?.holder as GuestId)
        return { won: true, current: next }
      },
    },
    fragments: {
      source: async (_holder: GuestId, target: { name: string }) => {
        const { manifest, stream } = await store.openRead({ name: target.name, version, index: 0 }, 0)
        const data: Buffer[] = []
        for await (const b of stream) data.push(b as Buffer)
        return { manifest, chunk: async () => Buffer.concat(data), close: () => undefined }
      },
      sink: async () => ({ failed: false, failure: undefined, write: async () => {}, finish: async () => ({}), fail: () => {} }),
      drop: async (record: FileRecord) => {
        await store.drop(record.name, record.version, 0)
      },
    },
    clock: systemClock,
    log: silentLogger(),
    load: { held: () => 0, placed: () => {} },
    events: { put: () => {}, get: () => {}, fragmentSkipped: () => {}, fragmentsRebuilt: () => {} },
    coding,
  } as unknown as FilesContext
  return { ctx, movedTo, asked }
}

function drainOf(store: FragmentStore, ctx: FilesContext, signal = AbortSignal.timeout(60_000)) {
  let moved = 0
  const records = { list: () => [] } as unknown as TrackerStore
  const result = drain({ ctx, store, records, log: silentLogger(), signal, moved: () => moved++, handOffRecords: async () => {} })
  return result.then((r) => ({ ...r, counted: moved }))
}

describe('drain (graceful leave)', () => {
  it('hands over a fragment whose transfer here began before draining and lands after the first listing', async () => {
    const store = await openStore()
    const records = new Map<string, FileRecord>()
    const settled = await receive(store, 'settled')
    await settled.commit()
    records.set('settled', recordOf('settled', settled.digest))
    const late = await receive(store, 'late')
    records.set('late', recordOf('late', late.digest))
    const { ctx, movedTo } = partyAround(store, records)
    const draining = drainOf(store, ctx)
    // The first pass has only 'settled' to list; 'late' is still being written when that pass is over.
    await waitFor('the first pass to hand the settled fragment over', () => !store.has({ name: 'settled', version, index: 0 }))
    await late.commit()
    const result = await draining
    assert.equal(result.moved, 2)
    assert.ok(movedTo.get('late') && movedTo.get('late') !== self, 'the late fragment went to another guest')
    assert.equal(store.list().length, 0)
    await assert.rejects(store.beginWrite({ name: 'x', version, index: 0 }, coding), /leaving/)
  })

  it('waits for the record of a young fragment a put has not recorded yet', async () => {
    const store = await openStore()
    const records = new Map<string, FileRecord>()
    const young = await receive(store, 'young')
    await young.commit()
    const { ctx, movedTo } = partyAround(store, records)
    const draining = drainOf(store, ctx)
    // The put records its fragments a little later.
    setTimeout(() => records.set('young', recordOf('young', young.digest)), 600)
    const result = await draining
    assert.equal(result.moved, 1)
    assert.ok(movedTo.has('young'))
  })

  it('leaves an old fragment that no record points to at once, without waiting', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hp-drain-'))
    dirs.push(dir)
    // Stored an hour ago, by a peer since restarted.
    const first = await openStore(dir, () => Date.now() - 3_600_000)
    await (await receive(first, 'orphan')).commit()
    await first.close()
    const store = await openStore(dir)
    const { ctx, asked } = partyAround(store, new Map())
    const result = await drainOf(store, ctx)
    assert.deepEqual([result.moved, result.left], [0, 1])
    assert.deepEqual(asked, ['orphan'], 'an old orphan is decided in the first pass, not looked at again')
  })

  it('asks again a primary tracker that holds its decisions back for a while (it woke from a pause), with no attempt counted', async () => {
    const store = await openStore()
    const records = new Map<string, FileRecord>()
    const held = await receive(store, 'held')
    await held.commit()
    records.set('held', recordOf('held', held.digest))
    const { ctx, movedTo } = partyAround(store, records)
    const trackers = ctx.trackers as unknown as { change(next: FileRecord): Promise<unknown> }
    const decide = trackers.change
    let refusals = 0
    const until = Date.now() + 1_500
    // Refused for longer than four attempts in a row would take (the quarantine after a pause): once they were all the drain made.
    trackers.change = async (next) => {
      if (Date.now() < until) {
        refusals++
        throw new HousePartyError('ERR_NOT_ENOUGH_PEERS', 'the primary tracker of "held" did not answer: it was paused lately')
      }
      return decide(next)
    }
    const result = await drainOf(store, ctx)
    assert.ok(refusals >= 2, `asked again after a refusal (refused ${refusals} times)`)
    assert.deepEqual([result.moved, result.left], [1, 0], 'handed over once the primary decided again')
    assert.ok(movedTo.has('held'))
  })
})
