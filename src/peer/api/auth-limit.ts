/**
 * Failed authentication, held back per source (a token bucket each): a
 * source may fail `burst` times at once, then once per `refillMs`; beyond
 * that its requests are answered 429 without their credentials being looked
 * at, so guessing tokens or keys is slow and cheap to refuse. Sources that
 * authenticate are never slowed: only failures take from the bucket. At most
 * `maxSources` are tracked (the oldest forgotten first), so a flood from
 * many addresses holds bounded memory. Pure: the caller gives the time.
 */
export interface AuthLimitSettings {
  burst: number
  refillMs: number
  maxSources: number
}

export const DEFAULT_AUTH_LIMIT: AuthLimitSettings = { burst: 20, refillMs: 100, maxSources: 10_000 }

export class AuthLimiter {
  readonly #settings: AuthLimitSettings
  /** source → failures it may still make, as of `at`. */
  readonly #buckets = new Map<string, { tokens: number; at: number }>()

  constructor(settings: AuthLimitSettings = DEFAULT_AUTH_LIMIT) {
    this.#settings = settings
  }

  /** How long `source` must wait before its credentials are looked at again (0: now). */
  blockedFor(source: string, now: number): number {
    const bucket = this.#refilled(source, now)
    return bucket && bucket.tokens < 1 ? Math.ceil((1 - bucket.tokens) * this.#settings.refillMs) : 0
  }

  /** `source` failed to authenticate. */
  failed(source: string, now: number): void {
    const bucket = this.#refilled(source, now) ?? { tokens: this.#settings.burst, at: now }
    bucket.tokens = Math.max(0, bucket.tokens - 1)
    // Most recent last: the oldest source is the first one forgotten.
    this.#buckets.delete(source)
    this.#buckets.set(source, bucket)
    if (this.#buckets.size > this.#settings.maxSources) this.#buckets.delete(this.#buckets.keys().next().value as string)
  }

  #refilled(source: string, now: number): { tokens: number; at: number } | undefined {
    const bucket = this.#buckets.get(source)
    if (!bucket) return undefined
    bucket.tokens = Math.min(this.#settings.burst, bucket.tokens + (now - bucket.at) / this.#settings.refillMs)
    bucket.at = now
    if (bucket.tokens >= this.#settings.burst) {
      this.#buckets.delete(source)
      return undefined
    }
    return bucket
  }

  get sources(): number {
    return this.#buckets.size
  }
}
