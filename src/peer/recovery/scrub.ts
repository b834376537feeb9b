import type { Startable } from '../../shared/lifecycle.ts'
import type { Logger } from '../../shared/logger.ts'
import { Throttle } from '../../shared/throttle.ts'
import type { FragmentStore } from '../store/index.ts'

export interface ScrubSettings {
  /** Time between the starts of two passes over every fragment (0: never). */
  intervalMs: number
  /** Bytes per second a pass may read. */
  bytesPerSecond: number
}

export interface ScrubEvents {
  scrubbed(bytes: number): void
  /** A fragment failed its checksums and was deleted; the file's primary tracker rebuilds it. */
  corrupt(): void
  passDone(seconds: number): void
}

/**
 * Re-reads every fragment this peer holds, at a limited rate, and checks it
 * against its manifest. A damaged fragment is deleted rather than served:
 * the census of the file's primary tracker then finds it missing and rebuilds
 * it from the others.
 */
export class Scrubber implements Startable {
  readonly #store: FragmentStore
  readonly #settings: ScrubSettings
  readonly #events: ScrubEvents
  readonly #log: Logger
  #stopping = new AbortController()
  #timer: NodeJS.Timeout | undefined
  #running: Promise<number> | undefined

  constructor(store: FragmentStore, settings: ScrubSettings, events: ScrubEvents, log: Logger) {
    this.#store = store
    this.#settings = settings
    this.#events = events
    this.#log = log
  }

  start(signal?: AbortSignal): void {
    this.#stopping = new AbortController()
    signal?.addEventListener('abort', () => this.#stopping.abort(), { once: true })
    if (this.#settings.intervalMs <= 0) return
    this.#timer = setInterval(() => void this.run(), this.#settings.intervalMs)
    this.#timer.unref()
  }

  /** No pass starts from now on; resolves once the pass under way has stopped (it may be deleting a damaged fragment). */
  async stop(): Promise<void> {
    this.#stopping.abort()
    clearInterval(this.#timer)
    await this.#running
  }

  /** One pass over every fragment (or the one under way). Resolves with how many were damaged. */
  run(): Promise<number> {
    if (this.#stopping.signal.aborted) return Promise.resolve(0)
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined
    })
    return this.#running
  }

  async #pass(): Promise<number> {
    const started = performance.now()
    const throttle = new Throttle(this.#settings.bytesPerSecond)
    const signal = this.#stopping.signal
    let damaged = 0
    for await (const held of this.#store.walk()) {
      if (signal.aborted) break
      const pace = async (bytes: number): Promise<void> => {
        await throttle.take(bytes, signal)
        this.#events.scrubbed(bytes)
      }
      try {
        if (await this.#store.verify(held, pace)) continue
      } catch (err) {
        if (signal.aborted) break
        this.#log.warn({ name: held.name, index: held.index, err: (err as Error).message }, 'could not scrub a fragment')
        continue
      }
      damaged++
      this.#events.corrupt()
      this.#log.error({ name: held.name, version: held.version, index: held.index }, 'fragment failed its checksums; deleted so it is rebuilt')
      await this.#store.drop(held.name, held.version, held.index)
    }
    this.#events.passDone((performance.now() - started) / 1000)
    return damaged
  }
}
