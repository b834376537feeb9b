import type { ViewChange } from '../membership/index.ts'
import type { GuestId, RemovalReason } from '../protocol/index.ts'

/**
 * Guests that left the list, since when and why: when the fragments each
 * held may be rebuilt elsewhere. One voted dead, or one that stepped out
 * for a restart, is probably coming back with its data dir, so its
 * fragments wait out the rebuild delay; one that left for good handed off
 * what it could, and the rest is rebuilt at once.
 */
export class Absences {
  readonly #absent = new Map<GuestId, { since: number; reason: RemovalReason | 'unknown' }>()
  readonly #rebuildDelayMs: number

  constructor(rebuildDelayMs: number) {
    this.#rebuildDelayMs = rebuildDelayMs
  }

  /** Notes who left and who is back with a change of the guest list seen at `now`. */
  viewChanged(change: ViewChange, now: number): void {
    for (const g of change.removed) if (!this.#absent.has(g.id)) this.#absent.set(g.id, { since: now, reason: change.reasons.get(g.id) ?? 'unknown' })
    for (const g of change.after.guests) this.#absent.delete(g.id)
  }

  /** When the fragments of `holder`, not a guest, may be rebuilt elsewhere. */
  due(holder: GuestId, now: number): number {
    let absence = this.#absent.get(holder)
    if (!absence) {
      // A holder this peer never saw leave (it was gone before this peer started): the delay counts from now.
      absence = { since: now, reason: 'unknown' }
      this.#absent.set(holder, absence)
    }
    return absence.reason === 'leave' ? absence.since : absence.since + this.#rebuildDelayMs
  }
}
