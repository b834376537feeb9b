import { constants, type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks'
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

type Collect = (options: { type: 'major'; execution: 'async' }) => Promise<void>

/**
 * Asks V8 for an incremental major collection once the old generation holds
 * `slackBytes` more than after the last one (--heap-slack-mb; 0: never).
 *
 * Why: a peer runs with --initial-heap-size=128 (runtime.ts), which spares
 * large transfers dozens of full collections per GiB but also lets V8 leave
 * the old generation alone until it holds some 128 MB, most of it garbage.
 * Metadata work promotes much short-lived data: a listing page merges five
 * guests' answers, about 1 MB of which outlives the two scavenges of a 2 MB
 * young generation. That garbage is resident memory: a peer serving the full
 * listing of a million names rose 80 MiB above what it held through the puts.
 *
 * It watches V8's own collections (no timer: an idle peer collects nothing
 * and pays nothing), and the collection it asks for runs as V8's do, marked
 * incrementally and by helper threads.
 */
export class HeapGovernor {
  readonly #slack: number
  readonly #collected: () => void
  #observer: PerformanceObserver | undefined
  #floor = 0
  #asked = false

  /** `collected` is told each time the governor asks for a collection (a metric counts them). */
  constructor(options: { slackBytes: number; collected?: () => void }) {
    this.#slack = options.slackBytes
    this.#collected = options.collected ?? (() => undefined)
  }

  start(): void {
    const collect = this.#slack > 0 ? exposedCollector() : undefined
    if (!collect || this.#observer) return
    this.#floor = oldGenerationBytes()
    this.#observer = new PerformanceObserver((list) => this.#after(list.getEntries(), collect))
    this.#observer.observe({ entryTypes: ['gc'] })
  }

  async stop(): Promise<void> {
    this.#observer?.disconnect()
    this.#observer = undefined
  }

  #after(entries: PerformanceEntry[], collect: Collect): void {
    const held = oldGenerationBytes()
    if (entries.some((e) => (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) {
      this.#floor = held
      this.#asked = false
      return
    }
    if (this.#asked || held < this.#floor + this.#slack) return
    this.#asked = true
    this.#collected()
    collect({ type: 'major', execution: 'async' }).catch(() => {
      this.#asked = false
    })
  }
}

/** Bytes in the old generation's spaces (large objects included). */
function oldGenerationBytes(): number {
  let bytes = 0
  for (const s of getHeapSpaceStatistics()) if (s.space_name === 'old_space' || s.space_name === 'large_object_space') bytes += s.space_used_size
  return bytes
}

let collector: Collect | null | undefined

/** V8's gc(), made available once: undefined where the runtime refuses. */
function exposedCollector(): Collect | undefined {
  if (collector === undefined) {
    try {
      setFlagsFromString('--expose-gc')
      collector = runInNewContext('gc') as Collect
    } catch {
      collector = null
    }
  }
  return collector ?? undefined
}
