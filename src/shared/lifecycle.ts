/**
 * Every long-lived component starts and stops; the composition root starts
 * them in order and stops them in reverse (as js-libp2p does).
 */
export interface Startable {
  /** Starts the component; work it starts ends when `signal` aborts (the peer is stopping). */
  start(signal?: AbortSignal): Promise<void> | void
  /** Stops it: nothing new starts, and it resolves only once the work it had in flight is done. */
  stop(): Promise<void>
}

/** Components started in order and stopped in reverse, each stop awaited before the next. */
export class Lifecycle {
  readonly #started: { name: string; component: Startable }[] = []
  readonly #stopping = new AbortController()

  /** Aborts when stop() begins: hand it to work that must end with the lifecycle. */
  get signal(): AbortSignal {
    return this.#stopping.signal
  }

  async start(name: string, component: Startable): Promise<void> {
    await component.start(this.#stopping.signal)
    this.#started.push({ name, component })
  }

  /** Stops every started component, last first; a failing stop does not keep the others running. Returns the failures by name. */
  async stop(): Promise<Map<string, unknown>> {
    this.#stopping.abort()
    const failures = new Map<string, unknown>()
    for (let next = this.#started.pop(); next; next = this.#started.pop()) {
      try {
        await next.component.stop()
      } catch (err) {
        failures.set(next.name, err)
      }
    }
    return failures
  }
}

/** Resolves after ms, or rejects when the signal aborts. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason)
      return
    }
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Lets the event loop run what is waiting (pings, requests) before a long piece of work goes on. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** Exponential backoff with full jitter, so retrying peers do not march in step. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20))
  return Math.round(ceiling / 2 + (random() * ceiling) / 2)
}

/** Counts work in flight (requests being answered), so a stop can wait for it to finish. */
export class InFlight {
  #count = 0
  #idle: (() => void)[] = []

  get count(): number {
    return this.#count
  }

  /** One more under way; call the returned function (once) when it is done. */
  enter(): () => void {
    this.#count++
    let done = false
    return () => {
      if (done) return
      done = true
      if (--this.#count === 0) for (const wake of this.#idle.splice(0)) wake()
    }
  }

  /** Resolves once nothing is in flight, or when `signal` aborts (never rejects: the caller goes on either way). */
  async settled(signal: AbortSignal): Promise<void> {
    if (this.#count === 0 || signal.aborted) return
    let wake = (): void => {}
    await new Promise<void>((resolve) => {
      wake = resolve
      this.#idle.push(wake)
      signal.addEventListener('abort', wake, { once: true })
    })
    signal.removeEventListener('abort', wake)
    const at = this.#idle.indexOf(wake)
    if (at >= 0) this.#idle.splice(at, 1)
  }
}
