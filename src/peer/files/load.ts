import type { Clock } from '../../shared/clock.ts'
import type { GuestId } from '../protocol/index.ts'
import type { PlacementLoad } from '../ring/index.ts'

/**
 * What each guest stores, for placement: the figure it last sent in a pong,
 * plus what this peer placed on it since (pongs lag by a ping interval or
 * two, and a burst of puts must not all pick the same emptiest guest).
 */
export class LoadEstimate implements PlacementLoad {
  readonly #reported: (id: GuestId) => number | undefined
  readonly #clock: Clock
  readonly #recent: { id: string; bytes: number; at: number }[] = []

  /** `reported`: what a guest said it holds in its last pong. */
  constructor(reported: (id: GuestId) => number | undefined, clock: Clock) {
    this.#reported = reported
    this.#clock = clock
  }

  held(id: GuestId): number | undefined {
    const reported = this.#reported(id)
    if (reported === undefined) return undefined
    const since = this.#clock.now() - 2_000
    while (this.#recent.length > 0 && (this.#recent[0]?.at ?? 0) < since) this.#recent.shift()
    return reported + this.#recent.filter((r) => r.id === id).reduce((n, r) => n + r.bytes, 0)
  }

  placed(id: GuestId, bytes: number): void {
    if (bytes > 0) this.#recent.push({ id, bytes, at: this.#clock.now() })
  }
}
