import { yieldToLoop } from '../../shared/lifecycle.ts'
import type { FileRecord, GuestId } from '../protocol/index.ts'
import { type Arc, ArcParts, inArc, PartDigests, ringPosition } from '../ring/index.ts'
import { type TrackerStore, walkBounds } from '../tracker/index.ts'
import { expect } from './census.ts'

/**
 * Records a full pass reads, takes a census of, plans and carries out at a time: what it holds, whatever the arc
 * holds. Chunks of 2,500 lowered a rebuild's heap at 60,000 files (144 MB to 103 MB) but not a peer's peak RSS at
 * 1,000,000, where the pass after a restart then ran long enough to hold back the next rebuild by a minute.
 */
export const WALK_CHUNK = 10_000

/** One stretch of an arc and its records, read at one instant. The chunks of a walk tile its arc, in ring order. */
export interface ArcChunk {
  arc: Arc
  records: FileRecord[]
}

/**
 * A walk over the records of one arc, a chunk at a time in ring order, that
 * also computes what a census of the whole arc expects each guest to hold
 * (its digests), as if every record had been read at one instant: the end
 * of the walk. Each chunk is read right after the tracker's change log is
 * taken, so what the walk counted of a name is its record when its chunk was
 * read or, for a name written since, the `before` of a later log: each log
 * corrects what was counted, and the last one leaves the log starting where
 * the digests stand, for the census of changes that follows.
 */
export class ArcWalk {
  readonly parts: ArcParts
  readonly expected: Map<GuestId, PartDigests>
  /** Live files in the arc (tombstones left out). */
  files = 0
  /** False when a change log overflowed during the walk: the digests are not those of one instant. */
  logged = true
  /**
   * Names written after their chunk was read: counted in the digests and the file count as they now stand, but
   * planned by nobody yet. The next census must look at them as changed ones (see Caretaker's baseline).
   * Undefined once forgotten (forgetUnplanned).
   */
  #unplanned: Set<string> | undefined = new Set()
  readonly #store: TrackerStore
  readonly #arc: Arc
  readonly #chunk: number
  /** Names from the walk's start up to this position are counted (see walkBounds); undefined before the first chunk. */
  #through: string | undefined
  #changes = 0

  constructor(store: TrackerStore, arc: Arc, guests: readonly GuestId[], chunk = WALK_CHUNK) {
    this.#store = store
    this.#arc = arc
    this.#chunk = chunk
    this.parts = new ArcParts(arc)
    this.expected = new Map(guests.map((g) => [g, new PartDigests(this.parts.count)]))
  }

  /** The names written behind the walk (see #unplanned), or undefined once forgotten. */
  get unplanned(): ReadonlySet<string> | undefined {
    return this.#unplanned
  }

  /**
   * Stops keeping the names written behind the walk, for a pass that already knows its census of changes cannot
   * follow (it left something waiting): a rebuilding pass writes the record of every file it repairs, and kept
   * them all, some 150,000 names a survivor at a million files, through the whole rebuild (23 minutes), to no use.
   */
  forgetUnplanned(): void {
    this.#unplanned = undefined
  }

  /** The tracker's change count when the walk ended (see TrackerStore.changes). */
  get changes(): number {
    return this.#changes
  }

  /** The chunks in ring order; each is read when asked for (the caller works through one before asking for the next). */
  *chunks(): Generator<ArcChunk> {
    const source = this.#store.chunks(this.#arc, this.#chunk)
    this.#store.takeChanges()
    for (;;) {
      this.#catchUp()
      const next = source.next()
      if (next.done) break
      for (const record of next.value.records) this.files += recount(this.expected, this.parts, undefined, record)
      this.#through = next.value.arc.to
      yield next.value
    }
    this.#catchUp()
    this.#changes = this.#store.changes
  }

  /** Brings what was counted up to date with the records written since the last log was taken. */
  #catchUp(): void {
    const log = this.#store.takeChanges()
    if (!log) {
      this.logged = false
      return
    }
    const through = this.#through
    if (through === undefined) return
    const { start, end } = walkBounds(this.#arc)
    const counted: Arc = { from: start, to: through }
    for (const [name, before] of log) {
      const position = ringPosition(name)
      if (!inArc(position, this.#arc) || !(through === end || inArc(position, counted))) continue
      this.files += recount(this.expected, this.parts, before, this.#store.get(name))
      this.#unplanned?.add(name)
    }
  }
}

const live = (r: FileRecord | undefined): number => (r && !r.deleted ? 1 : 0)

/** Takes what `before` says each guest holds out of the digests and puts in what `now` says; returns the change in live files. */
function recount(expected: ReadonlyMap<GuestId, PartDigests>, parts: ArcParts, before: FileRecord | undefined, now: FileRecord | undefined): number {
  expect(expected, parts, before, -1)
  expect(expected, parts, now, 1)
  return live(now) - live(before)
}

/** The records `isPrimary` of in the selected parts of an arc, read bucket run by bucket run (the census of changes). */
export function recordsInParts(store: TrackerStore, parts: ArcParts, selected: ReadonlySet<number>, isPrimary: (name: string) => boolean): FileRecord[] {
  const out: FileRecord[] = []
  let run: { from: number; to: number } | undefined
  const flush = (): void => {
    if (!run) return
    for (const record of store.inBuckets(run.from, run.to)) {
      const part = parts.partOf(ringPosition(record.name))
      if (part !== undefined && selected.has(part) && isPrimary(record.name)) out.push(record)
    }
    run = undefined
  }
  for (const { offset, bucket } of parts.buckets()) {
    if (!selected.has(parts.partAt(offset))) continue
    if (run && bucket === run.to + 1) run.to = bucket
    else {
      flush()
      run = { from: bucket, to: bucket }
    }
  }
  flush()
  return out
}

/** Names of the change log the census of changes reads between two turns of the event loop. */
const CATCH_UP_SLICE = 1_000

/**
 * Brings digests an earlier walk left (`expected`, of `parts`) up to date with the records written since: the
 * census of changes. A slice of names at a time, the event loop running between slices (at a thousand puts a
 * second a census interval logs tens of thousands of names). Each slice starts by taking the log again: a name
 * written meanwhile is looked at once more, from what was counted for it, so the digests stand as of the last
 * slice, where the log starts over. Returns the changed records, the change in live files and the tracker's
 * change count at the end; undefined when the log overflowed.
 */
export async function catchUp(
  store: TrackerStore,
  parts: ArcParts,
  expected: ReadonlyMap<GuestId, PartDigests>,
  slice = CATCH_UP_SLICE,
): Promise<{ changed: FileRecord[]; files: number; changes: number } | undefined> {
  const pending = new Map<string, FileRecord | undefined>()
  const changed = new Map<string, FileRecord>()
  let files = 0
  for (;;) {
    const log = store.takeChanges()
    if (!log) return undefined
    for (const [name, before] of log) if (!pending.has(name)) pending.set(name, before)
    let read = 0
    for (const [name, before] of pending) {
      if (read++ >= slice) break
      pending.delete(name)
      if (parts.partOf(ringPosition(name)) === undefined) continue
      const now = store.get(name)
      files += recount(expected, parts, before, now)
      if (now) changed.set(name, now)
      else changed.delete(name)
    }
    if (pending.size === 0) return { changed: [...changed.values()], files, changes: store.changes }
    await yieldToLoop()
  }
}
