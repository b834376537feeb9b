import { failureReply, type PintChannel, type StashChunk } from '../net/index.ts'
import { type BatchedCall, MAX_BATCH_BYTES, type PintReply, type PintRequest } from '../protocol/index.ts'
import type { FragmentStore } from '../store/index.ts'
import { answerTracker, type TrackerStore } from '../tracker/index.ts'
import { readStashChunk, readWhole, stashWhole, type TransferEvents } from './handlers.ts'
import { answerWhereWithFragment } from './where.ts'

type FetchCall = Extract<BatchedCall, { op: 'fetch' }>

/**
 * A batch, holder and tracker side: the stashes' chunks are read first (they
 * follow the frame, in order), then every call is served at once, so their
 * rows share a commit. Each call is answered as it would be alone, a
 * failure included: one bad call fails only itself. The bytes of the
 * fetches that succeeded (and of the fragments wheres brought) follow the
 * reply, in the order of the calls, all of it in one write.
 */
export async function serveBatch(
  req: Extract<PintRequest, { op: 'batch' }>,
  channel: PintChannel,
  store: FragmentStore,
  trackers: TrackerStore,
  events: TransferEvents,
): Promise<void> {
  const chunks = new Map<number, StashChunk>()
  // A sender batches at most MAX_BATCH_BYTES of chunks: more is refused before it is read, not held in memory.
  let room = MAX_BATCH_BYTES
  for (const [i, c] of req.calls.entries()) {
    if (c.op !== 'stash') continue
    const chunk = await readStashChunk(c, channel, room)
    room -= chunk.data.length
    chunks.set(i, chunk)
  }
  const fetched = new Map<number, Buffer>()
  const returned = { room: MAX_BATCH_BYTES }
  const serve = async (c: BatchedCall, i: number): Promise<unknown> => {
    switch (c.op) {
      case 'stash':
        return stashWhole(c, chunks.get(i) as StashChunk, store, events)
      case 'fetch': {
        const { reply, data } = await readForBatch(c, store, returned, events)
        fetched.set(i, data)
        return reply
      }
      case 'where': {
        const { reply, data } = await answerWhereWithFragment(c, store, trackers, returned, events)
        if (data) fetched.set(i, data)
        return reply
      }
      default:
        return answerTracker(c, trackers)
    }
  }
  const answers = await Promise.allSettled(req.calls.map(serve))
  const reply: PintReply<'batch'> = { ok: true, replies: answers.map((a) => (a.status === 'fulfilled' ? a.value : failureReply(a.reason))) }
  channel.socket.cork()
  try {
    const sent = [channel.reply(reply)]
    for (const [i, a] of answers.entries()) {
      const data = fetched.get(i)
      if (a.status === 'fulfilled' && data) sent.push(channel.write(data))
    }
    await Promise.all(sent)
  } finally {
    channel.socket.uncork()
  }
}

/** A fetch in a batch: the fragment read whole (it must fit in what is left of the batch's `room`), and its reply. */
async function readForBatch(
  c: FetchCall,
  store: FragmentStore,
  returned: { room: number },
  events: TransferEvents,
): Promise<{ reply: PintReply<'fetch'>; data: Buffer }> {
  const { manifest, data } = await readWhole(store, c, returned, events)
  return { reply: { ok: true, manifest, bytes: data.length }, data }
}
