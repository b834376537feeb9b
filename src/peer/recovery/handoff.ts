import type { Logger } from '../../shared/logger.ts'
import type { FileRecord, GuestId } from '../protocol/index.ts'
import { ringKey, trackedArc } from '../ring/index.ts'
import type { TrackerStore } from '../tracker/index.ts'
import type { TrackerClient } from '../transfer/index.ts'

/**
 * Tracker handoff: every record goes to the guests that are now its
 * trackers; a record this peer no longer tracks is forgotten once another
 * tracker has it.
 *
 * What a pass reads depends on the ring. On a ring handed off already (the
 * guests are those of the last pass that reached every tracker), only the
 * records of names this peer does not track are read (a range of the
 * index, usually empty), so a pass on a quiet ring reads nothing. After the
 * ring changed, every record is read once and sent only where its tracker
 * set differs from the one on the ring handed off before; the first pass
 * after a start sends each record to its other trackers, which heals a
 * watch one of them missed.
 */
export class RecordHandoff {
  readonly #records: TrackerStore
  readonly #trackers: TrackerClient
  readonly #log: Logger
  /** The guests of the last pass that reached every tracker it had records for. */
  #handedOff: readonly GuestId[] | undefined

  constructor(records: TrackerStore, trackers: TrackerClient, log: Logger) {
    this.#records = records
    this.#trackers = trackers
    this.#log = log
  }

  /** Pushes the records whose trackers on the ring of `guests` changed; `self` keeps those it still tracks. */
  async run(self: GuestId, guests: readonly GuestId[], signal?: AbortSignal): Promise<void> {
    const before = this.#handedOff
    const settled = before !== undefined && ringKey(before) === ringKey(guests)
    // After a ring change every record is read, a page at a time so the event loop keeps answering meanwhile.
    const candidates = settled ? this.#records.outside(trackedArc(guests, self, this.#trackers.replicas)) : this.#records.everyRecord()
    const batches = new Map<GuestId, FileRecord[]>()
    const pending: { name: string; targets: GuestId[]; mine: boolean }[] = []
    for await (const record of candidates) {
      const trackers = this.#trackers.trackersOf(record.name, guests)
      const mine = trackers.includes(self)
      // Its trackers were the same on the ring handed off before: they have it already.
      if (mine && before && this.#trackers.trackersOf(record.name, before).join(',') === trackers.join(',')) continue
      const targets = trackers.filter((t) => t !== self)
      for (const t of targets) {
        const batch = batches.get(t)
        if (batch) batch.push(record)
        else batches.set(t, [record])
      }
      pending.push({ name: record.name, targets, mine })
    }
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
    for (const p of pending) if (!p.mine && p.targets.some((t) => reached.has(t))) this.#records.forget(p.name)
    // A tracker that was not reached gets the whole pass again next time.
    if ([...batches.keys()].every((t) => reached.has(t))) this.#handedOff = [...guests]
    if (pending.length > 0) this.#log.debug({ records: pending.length, trackers: reached.size }, 'tracker records handed off')
  }
}
