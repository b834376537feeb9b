import { isHousePartyError } from '../../shared/errors.ts'
import { backoffMs, delay } from '../../shared/lifecycle.ts'
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
  // Passes until nothing is left to look at. A fragment whose transfer here began before draining did lands after
  // a listing (so each pass lists again, once the writes under way are over), and a young fragment no record points
  // to yet may belong to a put or a move that has not recorded it: it is looked at again until RECORD_LAG_MS old.
  const decided = new Set<string>()
  while (others.length > 0 && !signal.aborted) {
    let queue = store.list().filter((held) => !decided.has(keyOf(held)))
    if (queue.length === 0) {
      await store.writesSettled(signal)
      queue = store.list().filter((held) => !decided.has(keyOf(held)))
      if (queue.length === 0) break
    }
    let waiting = 0
    const worker = async (): Promise<void> => {
      for (let held = queue.shift(); held && !signal.aborted; held = queue.shift()) {
        const outcome = await moveAway(o, held, others)
        if (outcome === 'moved') moved++
        if (outcome === 'young') waiting++
        else decided.add(keyOf(held))
      }
    }
    const listed = queue.length
    await Promise.all([worker(), worker()])
    if (waiting === listed) await delay(RECHECK_MS, signal).catch(() => undefined)
  }
  const left = store.count
  if (others.length > 0) await o.handOffRecords(others)
  const records = o.records.size
  log.info({ moved, left, records }, 'fragments and tracker records handed over')
  return { moved, left, records }
}

const keyOf = (held: HeldFragment): string => fragmentKey(held.name, held.version, held.index)

/** How long after a fragment is stored here a record may still come to point at it: a put records its fragments once all are stored. */
const RECORD_LAG_MS = 5_000
/** Pause between looks at young fragments that no record points to yet. */
const RECHECK_MS = 250

/** moved: handed over; unneeded: no record points here; young: none does yet, but one may; failed: the grace ran out or no guest took it. */
type Outcome = 'moved' | 'unneeded' | 'young' | 'failed'

/** Tries a few times: a concurrent move of another fragment of the same file (rebalancing) can win the record. */
const MOVE_ATTEMPTS = 4
/** Pauses before asking again a primary tracker that did not take a change: backoffMs from this base, up to the cap. */
const DECISION_RETRY_MS = 250
const DECISION_RETRY_MAX_MS = 2_000

async function moveAway(o: DrainOptions, held: HeldFragment, others: readonly GuestId[]): Promise<Outcome> {
  const { ctx, log, signal } = o
  const self = ctx.roster.selfId
  const refused = new Set<GuestId>()
  let refusals = 0
  let attempt = 0
  while (attempt < MOVE_ATTEMPTS && !signal.aborted) {
    attempt++
    let target: GuestId | undefined
    try {
      const record = await ctx.trackers.where(held.name, signal)
      const ref = record?.fragments.find((f) => f.index === held.index)
      if (!record || record.deleted || record.version !== held.version || ref?.holder !== self) {
        const superseded = record !== undefined && (record.version > held.version || (record.deleted && record.version >= held.version))
        if (!superseded && Date.now() - held.stored < RECORD_LAG_MS) return 'young'
        // Garbage, or someone else moved it: nobody needs it moved.
        return 'unneeded'
      }
      const taken = new Set(record.fragments.map((f) => f.holder))
      const candidates = others.filter((id) => !taken.has(id) && !refused.has(id))
      const staying = record.fragments.filter((f) => f.index !== held.index).map((f) => f.holder)
      target = chooseHolders({
        candidates,
        name: held.name,
        count: 1,
        tolerate: record.coding.m,
        share: held.bytes,
        load: ctx.load,
        domains: (id) => ctx.roster.domainsOf(id),
        placed: staying.filter((id) => ctx.roster.addressOf(id) !== undefined),
      })[0]
      if (!target) return 'failed'
      const { won } = await moveFragment(ctx, record, held.index, target, { signal, throttle: o.throttle })
      if (won) {
        o.moved()
        return 'moved'
      }
      log.info({ name: held.name, index: held.index, attempt }, 'another change to the record won while handing a fragment over; trying again')
    } catch (err) {
      if (signal.aborted) return 'failed'
      if (isHousePartyError(err, 'ERR_NOT_ENOUGH_PEERS')) {
        // The record's trackers did not take the change, or did not answer: its primary may hold its decisions back
        // for a moment (it woke from a pause, or is rejoining). Asked again, without counting an attempt, while the grace lasts.
        log.debug({ name: held.name, index: held.index, err: (err as Error).message }, 'the record could not be changed yet; asking again')
        await delay(backoffMs(refusals++, DECISION_RETRY_MS, DECISION_RETRY_MAX_MS), signal).catch(() => undefined)
        attempt--
        continue
      }
      // The guest that failed the transfer is not asked again for this fragment.
      if (target) refused.add(target)
      log.warn({ name: held.name, index: held.index, attempt, err: (err as Error).message }, 'could not hand a fragment over; trying again')
    }
  }
  return 'failed'
}
