import { constants, type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks'
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

type Collect = (options: { type: 'major'; execution: 'async'; flavor?: 'regular' | 'last-resort' }) => Promise<void>

/** Why the governor asked for a collection: garbage passed the slack, or so did the freed pages V8 keeps (given back). */
export type CollectReason = 'garbage' | 'pages'

/** Pages given back to the system at most this often: each time costs an atomic full collection, a pause. */
export const RELEASE_INTERVAL_MS = 10_000

/** What the governor knows of the heap after a collection, and what it did last. */
export interface HeapState {
  /** Bytes in use in the old generation (large objects included). */
  oldUsed: number
  /** Bytes of regular pages V8 holds for its spaces now (large objects left out: V8 unmaps those when it frees them). */
  paged: number
  /** What `oldUsed` was after the last full collection. */
  floor: number
  /** The most `paged` has been since pages were last given back. */
  pagedPeak: number
  /** A collection asked for is still under way. */
  asked: boolean
  /** When pages were last given back (ms, any monotonic clock), or -Infinity. */
  releasedAt: number
}

/**
 * What to ask of V8 after a collection: nothing, a full collection (the old
 * generation gathered `slack` bytes of garbage since the last), or one that
 * also compacts the heap and gives freed pages back to the system
 * (`release`). V8 keeps the pages a full collection frees in a pool for
 * reuse, resident, leaves pages it could empty half full, and does better
 * only in a collection that reduces memory, which it runs when the process
 * is idle: a peer rebuilding for half an hour never is. Such a collection is
 * a pause, so it is asked for at most every RELEASE_INTERVAL_MS: in place of
 * a full collection that is due, or after one of V8's own once the pages
 * pooled (about what the spaces held at their peak less what they hold now)
 * pass the slack.
 */
export function heapAction(state: HeapState, now: number, slack: number, afterMajor: boolean): 'none' | 'collect' | 'release' {
  if (state.asked) return 'none'
  const releaseAllowed = now - state.releasedAt >= RELEASE_INTERVAL_MS
  if (afterMajor) return releaseAllowed && state.pagedPeak - state.paged >= slack ? 'release' : 'none'
  if (state.oldUsed < state.floor + slack) return 'none'
  // A regular collection here left a rebuilding peer's resident heap climbing 50-80 MiB for minutes between the
  // releases its pool estimate allowed (the estimate lags: V8 frees a collection's pages after it reports it).
  return releaseAllowed ? 'release' : 'collect'
}

/**
 * Asks V8 for an incremental major collection once the old generation holds
 * `slackBytes` more than after the last one (--heap-slack-mb; 0: never), and
 * for one that also gives freed pages back in its place, or once V8 pools
 * that much, at most every RELEASE_INTERVAL_MS (see heapAction).
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
 * and pays nothing). A regular collection it asks for runs as V8's do, marked
 * incrementally and by helper threads; one that gives pages back is a pause.
 */
export class HeapGovernor {
  readonly #slack: number
  readonly #collected: (reason: CollectReason) => void
  #observer: PerformanceObserver | undefined
  #state: HeapState = { oldUsed: 0, paged: 0, floor: 0, pagedPeak: 0, asked: false, releasedAt: Number.NEGATIVE_INFINITY }

  /** `collected` is told each time the governor asks for a collection, and why (a metric counts them). */
  constructor(options: { slackBytes: number; collected?: (reason: CollectReason) => void }) {
    this.#slack = options.slackBytes
    this.#collected = options.collected ?? (() => undefined)
  }

  start(): void {
    const collect = this.#slack > 0 ? exposedCollector() : undefined
    if (!collect || this.#observer) return
    const { oldUsed, paged } = heapNow()
    this.#state = { ...this.#state, oldUsed, paged, floor: oldUsed, pagedPeak: paged }
    this.#observer = new PerformanceObserver((list) => this.#after(list.getEntries(), collect))
    this.#observer.observe({ entryTypes: ['gc'] })
  }

  async stop(): Promise<void> {
    this.#observer?.disconnect()
    this.#observer = undefined
  }

  #after(entries: PerformanceEntry[], collect: Collect): void {
    const state = this.#state
    const { oldUsed, paged } = heapNow()
    const afterMajor = entries.some((e) => (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)
    Object.assign(state, { oldUsed, paged, pagedPeak: Math.max(state.pagedPeak, paged) })
    if (afterMajor) Object.assign(state, { floor: oldUsed, asked: false })
    const now = performance.now()
    const action = heapAction(state, now, this.#slack, afterMajor)
    if (action === 'none') return
    state.asked = true
    if (action === 'release') Object.assign(state, { releasedAt: now, pagedPeak: paged })
    this.#collected(action === 'release' ? 'pages' : 'garbage')
    collect({ type: 'major', execution: 'async', flavor: action === 'release' ? 'last-resort' : 'regular' }).catch(() => {
      state.asked = false
    })
  }
}

/** Bytes in use in the old generation (large objects included), and bytes of regular pages held by all spaces. */
function heapNow(): { oldUsed: number; paged: number } {
  let oldUsed = 0
  let paged = 0
  for (const s of getHeapSpaceStatistics()) {
    if (s.space_name === 'old_space' || s.space_name === 'large_object_space') oldUsed += s.space_used_size
    if (!s.space_name.includes('large_object')) paged += s.space_size
  }
  return { oldUsed, paged }
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
