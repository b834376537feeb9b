import type { FileRecord, FragmentRef, GuestId } from '../protocol/index.ts'
import { type Census, copiesOf, holdsAsRecorded } from './census.ts'

/** What is known of where the guests are, for judging one record's fragments. */
export interface Presence {
  guests: ReadonlySet<GuestId>
  /** What the guests hold, when this pass took a census. */
  census?: Census | undefined
  /** Guests that did not answer the last census: what they hold is unknown. */
  silent?: ReadonlySet<GuestId>
  /** For a holder that is not a guest: from when its fragments may be rebuilt elsewhere (it may come back first). */
  rebuildDue?: (holder: GuestId) => number
  now?: number
}

export interface Assessment {
  /** Fragments known to be readable: on a guest that, where a census asked, has it with the recorded digest. */
  ok: FragmentRef[]
  /** Indices to rebuild: nobody has them, their holder answered without them, or it is gone for longer than the rebuild delay. */
  missing: number[]
  /** Fragments on guests that are gone but may still come back (within the rebuild delay). */
  away: FragmentRef[]
  /** Fragments on guests that did not answer the census. */
  unknown: FragmentRef[]
  /** The earliest time an away fragment becomes missing. */
  nextDue: number | undefined
}

/**
 * Sorts each fragment index of `record` into ok, missing, away or unknown.
 * Only ok counts as usable: a holder that did not answer is not healthy,
 * and a holder that is gone is not lost until the rebuild delay has passed.
 */
export function assess(record: FileRecord, presence: Presence): Assessment {
  const { k, m } = record.coding
  const out: Assessment = { ok: [], missing: [], away: [], unknown: [], nextDue: undefined }
  const { census, guests, now = 0 } = presence
  for (let index = 0; index < k + m; index++) {
    const ref = record.fragments.find((f) => f.index === index)
    if (!ref) {
      out.missing.push(index)
    } else if (guests.has(ref.holder)) {
      if (census?.answered.has(ref.holder)) {
        if (holdsAsRecorded(census, record, ref)) out.ok.push(ref)
        else out.missing.push(index)
      } else if (census?.silent.has(ref.holder) || presence.silent?.has(ref.holder)) out.unknown.push(ref)
      else out.ok.push(ref)
    } else {
      const due = presence.rebuildDue?.(ref.holder) ?? now
      if (due <= now) out.missing.push(index)
      else {
        out.away.push(ref)
        out.nextDue = Math.min(out.nextDue ?? due, due)
      }
    }
  }
  return out
}

/** True when every fragment of `record` is known readable. */
export function isWhole(record: FileRecord, presence: Presence): boolean {
  return assess(record, presence).ok.length === record.coding.k + record.coding.m
}

/**
 * Who holds each fragment index of `record` that can be read now: the
 * recorded holder, or a live guest that answered the census with the very
 * same copy (digest and all). A fragment being moved is readable at one end
 * or the other, whichever the census and the record saw: what
 * `GET /health/party` counts.
 */
export function readableHolders(record: FileRecord, guests: ReadonlySet<GuestId>, census: Census | undefined): GuestId[] {
  const { ok, missing, away, unknown } = assess(record, { guests, census })
  const holders = ok.map((f) => f.holder)
  if (!census) return holders
  const elsewhere = [...missing.map((index) => record.fragments.find((f) => f.index === index) ?? { index, holder: '', digest: '' }), ...away, ...unknown]
  for (const ref of elsewhere) {
    const copy = copiesOf(census, record, ref.index).find(
      (c) => guests.has(c.holder) && census.answered.has(c.holder) && (ref.digest === '' || c.fragment.digest === ref.digest),
    )
    if (copy) holders.push(copy.holder)
  }
  return holders
}

/** A live file with fragments of its own: not a tombstone, nor a file made of parts (its parts are files, planned for as such). */
export function holdsFragments(record: FileRecord): boolean {
  return !record.deleted && record.parts === undefined
}
