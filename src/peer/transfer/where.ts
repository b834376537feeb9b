import { stripeCount } from '../codec/index.ts'
import type { PintChannel } from '../net/index.ts'
import { type BatchedCall, type FileRecord, MAX_BATCH_BYTES, type PintReply } from '../protocol/index.ts'
import type { FragmentStore } from '../store/index.ts'
import { answerWhere, type TrackerStore } from '../tracker/index.ts'
import { readWhole, type TransferEvents } from './handlers.ts'

type WhereCall = Extract<BatchedCall, { op: 'where' }>

/**
 * wheresMyPint, tracker side, for a get of a small file (`fragmentUpTo`):
 * the record and, when this peer also holds one of its fragments, that
 * fragment's bytes, so the asker needs no fetch from it. Trackers and
 * holders are chosen apart (ring position, rendezvous hashing), so on five
 * guests a small file's three trackers hold about two of its three
 * fragments between them: a get that asks its trackers has most of the k it
 * needs with their answers. The asker checks the fragment against the
 * record it keeps (the newest of its trackers' answers) as any fetch is
 * checked, and fetches instead what does not match.
 */
export async function answerWhereWithFragment(
  req: WhereCall,
  store: FragmentStore,
  trackers: TrackerStore,
  left: { room: number },
  events: TransferEvents,
): Promise<{ reply: PintReply<'where'>; data?: Buffer }> {
  const reply = await answerWhere(req, trackers)
  if (req.fragmentUpTo === undefined) return { reply }
  const held = await heldWhole(reply.record, store, left, req.fragmentUpTo, events)
  if (!held) return { reply }
  return { reply: { ...reply, fragment: { index: held.index, manifest: held.manifest, bytes: held.data.length } }, data: held.data }
}

/** A where on its own (not in a batch): the reply, then a fragment's bytes when it brings one. */
export async function serveWhere(req: WhereCall, channel: PintChannel, store: FragmentStore, trackers: TrackerStore, events: TransferEvents): Promise<void> {
  const { reply, data } = await answerWhereWithFragment(req, store, trackers, { room: MAX_BATCH_BYTES }, events)
  if (!data) return channel.reply(reply)
  channel.socket.cork()
  try {
    await Promise.all([channel.reply(reply), channel.write(data)])
  } finally {
    channel.socket.uncork()
  }
}

/** The first fragment of `record` this peer holds, read whole, when the file is one stripe and the fragment fits (`left`, `maxBytes`). */
async function heldWhole(
  record: FileRecord | null,
  store: FragmentStore,
  left: { room: number },
  maxBytes: number,
  events: TransferEvents,
): Promise<{ index: number; manifest: PintReply<'fetch'>['manifest']; data: Buffer } | undefined> {
  if (!record || record.deleted || record.parts || record.size === 0 || stripeCount(record.size, record.coding) !== 1) return undefined
  for (const { index } of record.fragments) {
    const key = { name: record.name, version: record.version, index }
    if (!store.has(key)) continue
    try {
      return { index, ...(await readWhole(store, key, left, events, maxBytes)) }
    } catch {
      // Too large, or dropped since: the asker fetches a fragment as it would have.
      return undefined
    }
  }
  return undefined
}
