/**
 * A work queue in the client-go shape: a key is queued at most once, one
 * reconcile runs per key at a time (a key queued while it runs is run again
 * after), failures come back with exponential backoff, and a reconcile may
 * ask to be run again after a delay (how it watches a party settle).
 */
export type Reconcile = (key: string) => Promise<{ requeueAfterMs?: number }>

export class WorkQueue {
  readonly #reconcile: Reconcile
  readonly #onError: (key: string, err: unknown) => void
  readonly #running = new Set<string>()
  readonly #dirty = new Set<string>()
  readonly #timers = new Map<string, NodeJS.Timeout>()
  readonly #failures = new Map<string, number>()
  /** The reconciles running now, so stop() can wait for them. */
  readonly #inFlight = new Set<Promise<void>>()
  #stopped = false

  constructor(reconcile: Reconcile, onError: (key: string, err: unknown) => void) {
    this.#reconcile = reconcile
    this.#onError = onError
  }

  /** Reconcile `key` now (or as soon as its running reconcile ends). */
  add(key: string): void {
    if (this.#stopped) return
    clearTimeout(this.#timers.get(key))
    this.#timers.delete(key)
    if (this.#running.has(key)) {
      this.#dirty.add(key)
      return
    }
    const run = this.#run(key)
    this.#inFlight.add(run)
    void run.finally(() => this.#inFlight.delete(run))
  }

  addAfter(key: string, ms: number): void {
    if (this.#stopped) return
    const existing = this.#timers.get(key)
    if (existing) clearTimeout(existing)
    this.#timers.set(
      key,
      setTimeout(() => {
        this.#timers.delete(key)
        this.add(key)
      }, ms),
    )
  }

  /** Forget a key (its resource is gone). */
  forget(key: string): void {
    clearTimeout(this.#timers.get(key))
    this.#timers.delete(key)
    this.#failures.delete(key)
  }

  /** Takes no more work and resolves once the reconciles under way have ended. */
  async stop(): Promise<void> {
    this.#stopped = true
    for (const t of this.#timers.values()) clearTimeout(t)
    this.#timers.clear()
    this.#dirty.clear()
    await Promise.all(this.#inFlight)
  }

  /** Keys reconciling right now. */
  get busy(): number {
    return this.#running.size
  }

  async #run(key: string): Promise<void> {
    this.#running.add(key)
    try {
      const { requeueAfterMs } = await this.#reconcile(key)
      this.#failures.delete(key)
      if (requeueAfterMs !== undefined) this.addAfter(key, requeueAfterMs)
    } catch (err) {
      const n = (this.#failures.get(key) ?? 0) + 1
      this.#failures.set(key, n)
      this.#onError(key, err)
      this.addAfter(key, Math.min(500 * 2 ** (n - 1), 60_000))
    } finally {
      this.#running.delete(key)
      if (this.#dirty.delete(key) && !this.#stopped) this.add(key)
    }
  }
}
