import type { Logger } from '../../shared/logger.ts'
import type { FileRecord, GuestId } from '../protocol/index.ts'
import type { TrackerStore } from '../tracker/index.ts'
import type { TrackerClient } from '../transfer/index.ts'

/**
 * Tracker handoff: every record goes to the guests that are now its
 * trackers; a record this peer no longer tracks is forgotten once another
 * tracker has it. Only records whose tracker set changed since they were
 * last pushed are sent, so a pass on a quiet ring sends nothing.
 */
export class RecordHandoff {
  readonly #records: TrackerStore
  readonly #trackers: TrackerClient
  readonly #log: Logger
  /** name → the tracker set the record was last pushed to. */
  readonly #pushed = new Map<string, string>()

  constructor(records: TrackerStore, trackers: TrackerClient, log: Logger) {
    this.#records = records
    this.#trackers = trackers
    this.#log = log
  }

  /** Pushes the records whose trackers on the ring of `guests` changed; `self` keeps those it still tracks. */
  async run(self: GuestId, guests: readonly GuestId[], signal?: AbortSignal): Promise<void> {
    const batches = new Map<GuestId, FileRecord[]>()
    const pending: { name: string; key: string; targets: GuestId[]; mine: boolean }[] = []
    for (const record of this.#records.list()) {
      const trackers = this.#trackers.trackersOf(record.name, guests)
      const key = trackers.join(',')
      if (this.#pushed.get(record.name) === key) continue
      const targets = trackers.filter((t) => t !== self)
      for (const t of targets) {
        const batch = batches.get(t)
        if (batch) batch.push(record)
        else batches.set(t, [record])
      }
      pending.push({ name: record.name, key, targets, mine: trackers.includes(self) })
    }
    if (pending.length === 0) return
    const reached = new Set<GuestId>()
    await Promise.all(
      [...batches].map(async ([target, list]) => {
        try {
          await this.#trackers.sync(target, list, signal)
          reached.add(target)
        } catch (err) {
          this.#log.debug({ target, err: (err as Error).message }, 'tracker handoff failed; retrying on the next pass')
        }
      }),
    )
    for (const p of pending) {
      if (p.targets.every((t) => reached.has(t))) this.#pushed.set(p.name, p.key)
      if (!p.mine && p.targets.some((t) => reached.has(t))) {
        this.#records.forget(p.name)
        this.#pushed.delete(p.name)
      }
    }
    this.#log.debug({ records: pending.length, trackers: reached.size }, 'tracker records handed off')
  }
}
