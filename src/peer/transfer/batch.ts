import { failureReply, type PintChannel, type StashChunk } from '../net/index.ts'
import { MAX_BATCH_BYTES, type PintReply, type PintRequest } from '../protocol/index.ts'
import type { FragmentStore } from '../store/index.ts'
import { answerTracker, type TrackerStore } from '../tracker/index.ts'
import { readStashChunk, stashWhole, type TransferEvents } from './handlers.ts'

/**
 * A batch, holder and tracker side: the stashes' chunks are read first (they
 * follow the frame, in order), then every call is served at once, so their
 * rows share a commit. Each call is answered as it would be alone, a
 * failure included: one bad call fails only itself.
 */
export async function serveBatch(
  req: Extract<PintRequest, { op: 'batch' }>,
  channel: PintChannel,
  store: FragmentStore,
  trackers: TrackerStore,
  events: TransferEvents,
): Promise<PintReply<'batch'>> {
  const chunks = new Map<number, StashChunk>()
  // A sender batches at most MAX_BATCH_BYTES of chunks: more is refused before it is read, not held in memory.
  let room = MAX_BATCH_BYTES
  for (const [i, c] of req.calls.entries()) {
    if (c.op !== 'stash') continue
    const chunk = await readStashChunk(c, channel, room)
    room -= chunk.data.length
    chunks.set(i, chunk)
  }
  const answers = await Promise.allSettled(
    req.calls.map((c, i) => (c.op === 'stash' ? stashWhole(c, chunks.get(i) as StashChunk, store, events) : (answerTracker(c, trackers) as Promise<unknown>))),
  )
  return {
    ok: true,
    replies: answers.map((a) => (a.status === 'fulfilled' ? a.value : failureReply(a.reason))),
  }
}
