import type { Logger } from '../../shared/logger.ts'
import type { Throttle } from '../../shared/throttle.ts'
import type { FilesContext } from '../files/index.ts'
import type { GuestId, HeldFragment } from '../protocol/index.ts'
import { chooseHolders } from '../ring/index.ts'
import type { FragmentStore } from '../store/index.ts'
import type { TrackerStore } from '../tracker/index.ts'
import { moveFragment } from './repair.ts'

export interface DrainOptions {
  ctx: FilesContext
  store: FragmentStore
  records: TrackerStore
  log: Logger
  throttle?: Throttle
  /** Aborts when the grace period is over: whatever is left is rebuilt by the others after the leave. */
  signal: AbortSignal
  moved(): void
  /** Sends the tracker records to their trackers on the ring of `others` (the party without this peer). */
  handOffRecords(others: readonly GuestId[]): Promise<void>
}

export interface DrainResult {
  moved: number
  /** Fragments still here: nobody needed them, or the grace period ran out. */
  left: number
  /** Tracker records still kept here: those whose new trackers could not be reached. */
  records: number
}

/**
 * Graceful leave, before the peer says goodbye: every fragment it holds
 * that a record points to is copied to another guest (one holding nothing
 * of that file) and the record updated, then the tracker records it keeps
 * go to the guests that track them once it is gone. The store refuses new
 * fragments meanwhile, so puts place them elsewhere.
 */
export async function drain(o: DrainOptions): Promise<DrainResult> {
  const { ctx, store, log, signal } = o
  const self = ctx.roster.selfId
  const others = ctx.roster
    .guests()
    .map((g) => g.id)
    .filter((id) => id !== self)
  store.draining = true
  const queue = [...store.list()]
  let moved = 0
  const worker = async (): Promise<void> => {
    for (let held = queue.shift(); held && !signal.aborted; held = queue.shift()) {
      if (await moveAway(o, held, others)) moved++
    }
  }
  if (others.length > 0) await Promise.all([worker(), worker()])
  const left = store.list().length
  if (others.length > 0) await o.handOffRecords(others)
  log.info({ moved, left, records: o.records.list().length }, 'fragments and tracker records handed over')
  return { moved, left, records: o.records.list().length }
}

async function moveAway(o: DrainOptions, held: HeldFragment, others: readonly GuestId[]): Promise<boolean> {
  const { ctx, log, signal } = o
  const self = ctx.roster.selfId
  try {
    const record = await ctx.trackers.where(held.name, signal)
    const ref = record?.fragments.find((f) => f.index === held.index)
    // A fragment no current record points to is garbage: nobody needs it moved.
    if (!record || record.deleted || record.version !== held.version || ref?.holder !== self) return false
    const taken = new Set(record.fragments.map((f) => f.holder))
    const candidates = chooseHolders(
      others.filter((id) => !taken.has(id)),
      held.name,
      1,
      held.bytes,
      ctx.load,
    )
    for (const target of candidates) {
      try {
        const { won } = await moveFragment(ctx, record, held.index, target, { signal, throttle: o.throttle })
        if (won) o.moved()
        return won
      } catch (err) {
        if (signal.aborted) return false
        log.warn({ name: held.name, index: held.index, target, err: (err as Error).message }, 'could not hand a fragment over; trying another guest')
      }
    }
  } catch (err) {
    if (!signal.aborted) log.warn({ name: held.name, err: (err as Error).message }, 'could not hand a fragment over')
  }
  return false
}
