import { type Clock, systemClock } from './clock.ts'
import { delay } from './lifecycle.ts'

/**
 * A token bucket in bytes per second, shared by background work (recovery,
 * rebalance, scrub) so it leaves the disks and the network to puts and gets.
 * A rate of 0 means unlimited. Up to one second of rate may be spent at once.
 */
export class Throttle {
  readonly #rate: number
  readonly #clock: Clock
  #tokens: number
  #at: number

  constructor(bytesPerSecond: number, clock: Clock = systemClock) {
    this.#rate = bytesPerSecond
    this.#clock = clock
    this.#tokens = bytesPerSecond
    this.#at = clock.monotonic()
  }

  /** Waits until `bytes` may be spent. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.#rate <= 0) return
    const now = this.#clock.monotonic()
    this.#tokens = Math.min(this.#rate, this.#tokens + ((now - this.#at) * this.#rate) / 1000)
    this.#at = now
    this.#tokens -= bytes
    if (this.#tokens < 0) await delay((-this.#tokens / this.#rate) * 1000, signal)
  }
}
