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
/** Records gathered for one tracker before they are sent to it (in sync calls of a few hundred each). */
const HANDOFF_BATCH = 2_000

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
    const targeted = new Set<GuestId>()
    const failed = new Set<GuestId>()
    /** Records no longer tracked here that some tracker took: forgotten once the walk is over. */
    const taken = new Set<string>()
    let handed = 0
    const flush = async (target: GuestId): Promise<void> => {
      const list = batches.get(target) ?? []
      batches.delete(target)
      // A tracker that failed once gets the whole pass again next time: nothing more is sent to it now.
      if (list.length === 0 || failed.has(target)) return
      try {
        await this.#trackers.sync(target, list, signal)
        for (const record of list) if (!this.#trackers.trackersOf(record.name, guests).includes(self)) taken.add(record.name)
      } catch (err) {
        failed.add(target)
        this.#log.debug({ target, err: (err as Error).message }, 'tracker handoff failed; retrying on the next pass')
      }
    }
    for await (const record of candidates) {
      const trackers = this.#trackers.trackersOf(record.name, guests)
      // Its trackers were the same on the ring handed off before: they have it already.
      if (trackers.includes(self) && before && this.#trackers.trackersOf(record.name, before).join(',') === trackers.join(',')) continue
      handed++
      for (const t of trackers) {
        if (t === self) continue
        targeted.add(t)
        const batch = batches.get(t)
        if (batch) batch.push(record)
        else batches.set(t, [record])
        // Sent as the walk goes: after a ring change at a million records, holding them all for the end would take gigabytes.
        if ((batch?.length ?? 1) >= HANDOFF_BATCH) await flush(t)
      }
    }
    await Promise.all([...batches.keys()].map(flush))
    for (const name of taken) this.#records.forget(name)
    if (failed.size === 0) this.#handedOff = [...guests]
    if (handed > 0) this.#log.debug({ records: handed, trackers: targeted.size - failed.size }, 'tracker records handed off')
  }
}
