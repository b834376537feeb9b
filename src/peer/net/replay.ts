import type { Clock } from '../../shared/clock.ts'

/**
 * Rejects datagrams that are too old, from too far in the future, or seen
 * before. A datagram is only accepted within `skewMs` of its timestamp, so a
 * nonce need only be remembered until its timestamp + skewMs: after that the
 * age check rejects it anyway. Memory is bounded by `maxEntries`; when full,
 * new datagrams are refused (counted) rather than opening a replay hole.
 */
export class ReplayWindow {
  readonly #clock: Clock
  readonly #skewMs: number
  readonly #maxEntries: number
  /** nonce -> forget-after time; Map keeps insertion order, which is roughly expiry order. */
  readonly #seen = new Map<string, number>()

  constructor(clock: Clock, skewMs = 30_000, maxEntries = 500_000) {
    this.#clock = clock
    this.#skewMs = skewMs
    this.#maxEntries = maxEntries
  }

  get size(): number {
    return this.#seen.size
  }

  check(timestamp: number, nonce: Buffer): 'ok' | 'stale' | 'replayed' {
    const now = this.#clock.now()
    if (Math.abs(now - timestamp) > this.#skewMs) return 'stale'
    this.#sweep(now)
    const key = nonce.toString('hex')
    if (this.#seen.has(key)) return 'replayed'
    if (this.#seen.size >= this.#maxEntries) return 'replayed'
    this.#seen.set(key, timestamp + this.#skewMs)
    return 'ok'
  }

  #sweep(now: number): void {
    // Entries arrive roughly in time order; stop at the first live one.
    // A few out-of-order stragglers live a little longer, which is harmless.
    for (const [key, forgetAt] of this.#seen) {
      if (forgetAt > now) break
      this.#seen.delete(key)
    }
  }
}
