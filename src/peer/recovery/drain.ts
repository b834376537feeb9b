import type { Logger } from '../../shared/logger.ts'
import type { Throttle } from '../../shared/throttle.ts'
import type { FilesContext } from '../files/index.ts'
import type { GuestId, HeldFragment } from '../protocol/index.ts'
import { chooseHolders } from '../ring/index.ts'
import type { FragmentStore } from '../store/index.ts'
import type { TrackerStore } from '../tracker/index.ts'
import { fragmentKey } from './census.ts'
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
  let moved = 0
  // Passes until nothing new turns up: a fragment whose transfer here began
  // before draining did lands after the first listing.
  const seen = new Set<string>()
  const unseen = (held: HeldFragment): boolean => {
    const key = fragmentKey(held.name, held.version, held.index)
    if (seen.has(key)) return false
    seen.add(key)
    return true
  }
  while (others.length > 0 && !signal.aborted) {
    const queue = store.list().filter(unseen)
    if (queue.length === 0) break
    const worker = async (): Promise<void> => {
      for (let held = queue.shift(); held && !signal.aborted; held = queue.shift()) {
        if (await moveAway(o, held, others)) moved++
      }
    }
    await Promise.all([worker(), worker()])
  }
  const left = store.list().length
  if (others.length > 0) await o.handOffRecords(others)
  log.info({ moved, left, records: o.records.list().length }, 'fragments and tracker records handed over')
  return { moved, left, records: o.records.list().length }
}

/** Tries a few times: a concurrent move of another fragment of the same file (rebalancing) can win the record. */
const MOVE_ATTEMPTS = 4

async function moveAway(o: DrainOptions, held: HeldFragment, others: readonly GuestId[]): Promise<boolean> {
  const { ctx, log, signal } = o
  const self = ctx.roster.selfId
  const refused = new Set<GuestId>()
  for (let attempt = 1; attempt <= MOVE_ATTEMPTS && !signal.aborted; attempt++) {
    let target: GuestId | undefined
    try {
      const record = await ctx.trackers.where(held.name, signal)
      const ref = record?.fragments.find((f) => f.index === held.index)
      // A fragment no current record points to here is garbage, or someone else moved it: nobody needs it moved.
      if (!record || record.deleted || record.version !== held.version || ref?.holder !== self) return false
      const taken = new Set(record.fragments.map((f) => f.holder))
      const candidates = others.filter((id) => !taken.has(id) && !refused.has(id))
      target = chooseHolders(candidates, held.name, 1, held.bytes, ctx.load)[0]
      if (!target) return false
      const { won } = await moveFragment(ctx, record, held.index, target, { signal, throttle: o.throttle })
      if (won) {
        o.moved()
        return true
      }
      log.info({ name: held.name, index: held.index, attempt }, 'another change to the record won while handing a fragment over; trying again')
    } catch (err) {
      if (signal.aborted) return false
      // The guest that failed the transfer is not asked again for this fragment.
      if (target) refused.add(target)
      log.warn({ name: held.name, index: held.index, attempt, err: (err as Error).message }, 'could not hand a fragment over; trying again')
    }
  }
  return false
}
