import { LAG_WINDOW_MS } from './constants.ts'

/**
 * Measures this peer's own event-loop lag from the lateness of its ticks
 * (the Lifeguard idea: a peer that is starved of CPU knows it, and says so).
 * A tick later than `pauseMs` is a pause (SIGSTOP, a long GC, a throttled
 * container): it is reported apart and not counted as lag, because a pause
 * says nothing about how slow the peer is once it runs again.
 */
export class LagMeter {
  readonly #tickMs: number
  readonly #pauseMs: number
  readonly #quarantineMs: number
  /** Worst lateness per second, for the last LAG_WINDOW_MS. */
  readonly #buckets: { second: number; worst: number }[] = []
  #lastTick: number | undefined
  #pausedAt = Number.NEGATIVE_INFINITY

  /** `quarantineMs`: how long after a pause this peer distrusts its own view of who is silent. */
  constructor(tickMs: number, pauseMs: number, quarantineMs: number) {
    this.#tickMs = tickMs
    this.#pauseMs = pauseMs
    this.#quarantineMs = quarantineMs
  }

  /** Records a tick; returns how long the peer was paused, if this tick ends a pause. */
  tick(now: number): number | undefined {
    const last = this.#lastTick
    this.#lastTick = now
    if (last === undefined) return undefined
    const late = Math.max(0, now - last - this.#tickMs)
    if (late > this.#pauseMs) {
      this.#pausedAt = now
      return late
    }
    const second = Math.floor(now / 1000)
    const newest = this.#buckets.at(-1)
    if (newest?.second === second) newest.worst = Math.max(newest.worst, late)
    else this.#buckets.push({ second, worst: late })
    while ((this.#buckets[0]?.second ?? second) <= second - LAG_WINDOW_MS / 1000) this.#buckets.shift()
    return undefined
  }

  /** The worst tick lateness of the last few seconds, pauses left out (ms). */
  lag(now: number): number {
    const floor = Math.floor(now / 1000) - LAG_WINDOW_MS / 1000
    let worst = 0
    for (const b of this.#buckets) if (b.second > floor && b.worst > worst) worst = b.worst
    return Math.round(worst)
  }

  /** True for a while after a pause: what this peer saw as silence may have been its own. */
  recentlyPaused(now: number): boolean {
    return now - this.#pausedAt < this.#quarantineMs
  }
}
