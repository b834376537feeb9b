import type { Logger } from '../../shared/logger.ts'
import type { FileRecord, GuestId } from '../protocol/index.ts'
import { type Arc, DIGEST_PARTS, differingParts, primaryArc, ringKey, trackedArc } from '../ring/index.ts'
import type { TrackerStore } from '../tracker/index.ts'
import type { TrackerClient } from '../transfer/index.ts'
import type { RecoveryEvents } from './execute.ts'

/**
 * Tracker handoff: every record goes to the guests that are now its
 * trackers; a record this peer no longer tracks is forgotten once another
 * tracker has it.
 *
 * What a pass reads depends on the ring. On a ring handed off already (the
 * guests are those of the last pass that reached every tracker), only the
 * records of names this peer does not track are read (a range of the
 * index, usually empty), so a pass on a quiet ring reads nothing. On a ring
 * that changed, and on the first pass after a start, those are sent too,
 * and then each arc this peer tracks is compared, by a digest per part of
 * the arc, with each of its other trackers (a new one has nothing, one
 * that was away may have missed watches, this peer may have): the records
 * of the parts that differ are taken from it where newer, then sent to it.
 * A ring change costs a few digests per arc and the records that differ,
 * not a walk over every record kept here, which at a million files is most
 * of a million. A peer leaving sends every record it keeps.
 */
/** Records gathered for one tracker before they are sent to it (in sync calls of a few hundred each). */
const HANDOFF_BATCH = 2_000

export class RecordHandoff {
  readonly #records: TrackerStore
  readonly #trackers: TrackerClient
  readonly #log: Logger
  /** The guests of the last pass that reached every tracker it had records for. */
  #handedOff: readonly GuestId[] | undefined

  readonly #events: Pick<RecoveryEvents, 'recordsHanded'> | undefined

  constructor(records: TrackerStore, trackers: TrackerClient, log: Logger, events?: Pick<RecoveryEvents, 'recordsHanded'>) {
    this.#records = records
    this.#trackers = trackers
    this.#log = log
    this.#events = events
  }

  /**
   * The records kept here may have missed changes the others made (this peer was voted out, then admitted again,
   * maybe onto a ring of the same guests): the next pass compares every arc it tracks with its other trackers.
   */
  unsettle(): void {
    this.#handedOff = undefined
  }

  /** Pushes the records whose trackers on the ring of `guests` changed; `self` keeps those it still tracks. */
  async run(self: GuestId, guests: readonly GuestId[], signal?: AbortSignal): Promise<void> {
    const settled = this.#handedOff !== undefined && ringKey(this.#handedOff) === ringKey(guests)
    const pass = new HandoffPass(self, guests, this.#trackers, this.#log, signal)
    if (!guests.includes(self)) {
      // Leaving: every record goes to its trackers on the ring without this peer, read a page at a time.
      await pass.send(this.#records.everyRecord())
    } else {
      // Names this peer no longer tracks (usually none: a range of the index) go to their trackers, to be forgotten here.
      await pass.send(this.#records.outside(trackedArc(guests, self, this.#trackers.replicas)))
      if (!settled) await this.#compareArcs(pass, self, guests)
    }
    for (const name of pass.taken) this.#records.forget(name)
    if (pass.failed.size === 0) this.#handedOff = [...guests]
    this.#events?.recordsHanded(pass.sent, pass.pulled)
    if (pass.handed > 0 || pass.pulled > 0)
      this.#log.debug({ records: pass.handed, taken: pass.pulled, trackers: pass.targeted.size - pass.failed.size }, 'tracker records handed off')
  }

  /**
   * For each arc this peer tracks (its own primary arc and those of its predecessors it is a replica of), asks each
   * other tracker of the arc for its digests of the arc's parts. From each, it first takes the records of the parts
   * that differ (it may have missed watches while it was away; it keeps the newer of two records), then sends each
   * its records of the parts that still differ, so a record only one of them had reaches the other too.
   */
  async #compareArcs(pass: HandoffPass, self: GuestId, guests: readonly GuestId[]): Promise<void> {
    const ring = [...new Set([...guests, self])].sort()
    const at = ring.indexOf(self)
    const owners =
      ring.length < 2
        ? []
        : Array.from({ length: Math.min(this.#trackers.replicas, ring.length) }, (_, d) => ring[(at - d + ring.length) % ring.length] as GuestId)
    for (const owner of owners) {
      const arc = primaryArc(ring, owner)
      const answered = new Map<GuestId, string[]>()
      for (const target of this.#trackers.trackersAt(owner, guests)) {
        if (target === self || pass.failed.has(target) || pass.signal?.aborted) continue
        try {
          answered.set(target, await this.#trackers.recordDigests(target, arc, DIGEST_PARTS, pass.signal))
        } catch (err) {
          pass.fail(target, err)
        }
      }
      const before = this.#records.digestsIn(arc, DIGEST_PARTS).encode()
      const pulled = pass.pulled
      for (const [target, theirs] of answered) {
        // Nothing to take from a part where it keeps nothing (all of them, for a guest that just joined).
        const differing = differingParts(before, theirs).filter((part) => !emptyPart(theirs[part]))
        if (differing.length > 0 && !(await this.#takeTheirs(pass, target, arc, differing))) answered.delete(target)
      }
      // Counted again only if a record was taken: then the parts to send follow what this peer keeps now.
      const ours = pass.pulled === pulled ? before : this.#records.digestsIn(arc, DIGEST_PARTS).encode()
      for (const [target, theirs] of answered) {
        const differing = differingParts(ours, theirs)
        if (differing.length > 0) await pass.send(this.#records.inParts(arc, DIGEST_PARTS, new Set(differing)), target)
      }
    }
  }

  /** Takes the records `target` keeps in the differing parts of `arc`, where newer than this peer's; false if it did not answer. */
  async #takeTheirs(pass: HandoffPass, target: GuestId, arc: Arc, differing: readonly number[]): Promise<boolean> {
    for (const part of differing) {
      try {
        for await (const theirs of this.#trackers.recordsIn(target, arc, DIGEST_PARTS, part, pass.signal)) {
          for (const record of theirs) if (this.#records.watch(record).accepted) pass.pulled++
          await this.#records.committed()
        }
      } catch (err) {
        pass.fail(target, err)
        return false
      }
    }
    return true
  }
}

/** Whether a part's digest (`xor.count`) counts no record. */
function emptyPart(digest: string | undefined): boolean {
  return digest === undefined || digest.endsWith('.0')
}

/** One handoff pass: records gathered per tracker and sent in batches, and what came of it. */
class HandoffPass {
  readonly self: GuestId
  readonly guests: readonly GuestId[]
  readonly signal: AbortSignal | undefined
  readonly #trackers: TrackerClient
  readonly #log: Logger
  readonly #batches = new Map<GuestId, FileRecord[]>()
  readonly targeted = new Set<GuestId>()
  readonly failed = new Set<GuestId>()
  /** Records no longer tracked here that some tracker took: forgotten once the pass is over. */
  readonly taken = new Set<string>()
  handed = 0
  /** Records sent, one per tracker that took the call. */
  sent = 0
  /** Records another tracker had newer than this peer, taken from it. */
  pulled = 0

  constructor(self: GuestId, guests: readonly GuestId[], trackers: TrackerClient, log: Logger, signal: AbortSignal | undefined) {
    this.self = self
    this.guests = guests
    this.#trackers = trackers
    this.#log = log
    this.signal = signal
  }

  /** Sends each record to its other trackers (only to `only`, when given), as the walk goes, then what is left. */
  async send(records: Iterable<FileRecord> | AsyncIterable<FileRecord>, only?: GuestId): Promise<void> {
    for await (const record of records) {
      const trackers = this.#trackers.trackersOf(record.name, this.guests)
      this.handed++
      for (const t of trackers) {
        if (t === this.self || (only !== undefined && t !== only)) continue
        this.targeted.add(t)
        const batch = this.#batches.get(t)
        if (batch) batch.push(record)
        else this.#batches.set(t, [record])
        // Sent as the walk goes: after a ring change at a million records, holding them all for the end would take gigabytes.
        if ((batch?.length ?? 1) >= HANDOFF_BATCH) await this.#flush(t)
      }
    }
    await Promise.all([...this.#batches.keys()].map((t) => this.#flush(t)))
  }

  fail(target: GuestId, err: unknown): void {
    this.failed.add(target)
    this.#log.debug({ target, err: (err as Error).message }, 'tracker handoff failed; retrying on the next pass')
  }

  async #flush(target: GuestId): Promise<void> {
    const list = this.#batches.get(target) ?? []
    this.#batches.delete(target)
    // A tracker that failed once gets the whole pass again next time: nothing more is sent to it now.
    if (list.length === 0 || this.failed.has(target)) return
    try {
      await this.#trackers.sync(target, list, this.signal)
      this.sent += list.length
      for (const record of list) if (!this.#trackers.trackersOf(record.name, this.guests).includes(this.self)) this.taken.add(record.name)
    } catch (err) {
      this.fail(target, err)
    }
  }
}
