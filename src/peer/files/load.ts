import type { Clock } from '../../shared/clock.ts'
import type { GuestId } from '../protocol/index.ts'
import type { PlacementLoad } from '../ring/index.ts'

/** How long a placement counts on top of the figure a guest reports: pongs lag by a ping interval or two. */
const RECENT_MS = 2_000

/**
 * What each guest stores, for placement: the figure it last sent in a pong,
 * plus what this peer placed on it since (pongs lag by a ping interval or
 * two, and a burst of puts must not all pick the same emptiest guest).
 * Placements are summed per guest as they come and go, so asking costs the
 * same whatever the rate of puts (it is asked for every guest on every put).
 */
export class LoadEstimate implements PlacementLoad {
  readonly #reported: (id: GuestId) => number | undefined
  readonly #clock: Clock
  readonly #recent: { id: GuestId; bytes: number; at: number }[] = []
  /** Index of the oldest placement still in #recent (the queue is compacted now and then, not shifted every time). */
  #head = 0
  readonly #recentBytes = new Map<GuestId, number>()

  /** `reported`: what a guest said it holds in its last pong. */
  constructor(reported: (id: GuestId) => number | undefined, clock: Clock) {
    this.#reported = reported
    this.#clock = clock
  }

  held(id: GuestId): number | undefined {
    const reported = this.#reported(id)
    if (reported === undefined) return undefined
    this.#expire()
    return reported + (this.#recentBytes.get(id) ?? 0)
  }

  placed(id: GuestId, bytes: number): void {
    if (bytes <= 0) return
    this.#recent.push({ id, bytes, at: this.#clock.now() })
    this.#recentBytes.set(id, (this.#recentBytes.get(id) ?? 0) + bytes)
  }

  #expire(): void {
    const since = this.#clock.now() - RECENT_MS
    while (this.#head < this.#recent.length && (this.#recent[this.#head]?.at ?? 0) < since) {
      const { id, bytes } = this.#recent[this.#head] as { id: GuestId; bytes: number }
      const left = (this.#recentBytes.get(id) ?? 0) - bytes
      if (left > 0) this.#recentBytes.set(id, left)
      else this.#recentBytes.delete(id)
      this.#head++
    }
    if (this.#head > 1024 && this.#head * 2 > this.#recent.length) {
      this.#recent.splice(0, this.#head)
      this.#head = 0
    }
  }
}
