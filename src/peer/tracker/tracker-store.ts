import { mkdir, readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { HousePartyError } from '../../shared/errors.ts'
import { yieldToLoop } from '../../shared/lifecycle.ts'
import type { Logger } from '../../shared/logger.ts'
import { FileRecord, type Version } from '../protocol/index.ts'
import type { Arc, PartDigests } from '../ring/index.ts'
import { ChangeLog } from './changes.ts'
import { type Page, type PageQuery, pageOf } from './listing.ts'
import { positionRanges, RecordTable, walkBounds } from './record-table.ts'
import { compareRecords, newestRecord } from './records.ts'

export interface WatchResult {
  /** The record was newer than what this tracker had, and is now current. */
  accepted: boolean
  current: FileRecord
  /** The record it displaced, if any. */
  replaced: FileRecord | null
  /** A newer version than this record is current, or a put of one has begun (so this one will not stay current). */
  newer: boolean
}

/** Records read between two turns of the event loop in a walk over many (see everyRecord). */
const WALK_PAGE = 1000

/** How long a put's intent is remembered: longer than any upload of one name should take between its start and its record. */
const INTENT_TTL_MS = 30 * 60_000

/**
 * The records this peer keeps as one of a file's trackers. Newer versions
 * (then higher revisions) win, so replicas that see updates in different
 * orders converge. Records live in the peer's embedded index
 * (<data>/index.db, see record-table.ts); a data dir of the earlier layout
 * (one JSON file per record under <data>/tracker) is imported on first start.
 */
export class TrackerStore {
  readonly #dataDir: string
  readonly #log: Logger
  #table: RecordTable | undefined
  /** name → versions of puts that began here and have not been recorded yet, with when they are forgotten. Kept in memory only. */
  readonly #intents = new Map<string, Map<Version, number>>()
  readonly #now: () => number
  readonly #decisionsHeld: () => string | undefined
  readonly #changes = new ChangeLog()

  /**
   * `decisionsHeld` says why this peer must not decide changes now (see watch), or undefined when it may: a peer
   * that was voted out while paused remembers records the others have changed since.
   */
  constructor(dataDir: string, logger: Logger, options: { now?: () => number; decisionsHeld?: () => string | undefined } = {}) {
    this.#dataDir = dataDir
    this.#log = logger
    this.#now = options.now ?? Date.now
    this.#decisionsHeld = options.decisionsHeld ?? (() => undefined)
  }

  /** Opens the index (creating it, or importing the earlier layout); returns how many records it holds. */
  async open(): Promise<number> {
    await mkdir(this.#dataDir, { recursive: true })
    this.#table = new RecordTable(join(this.#dataDir, 'index.db'))
    await this.#importLegacy(join(this.#dataDir, 'tracker'))
    return this.#table.size
  }

  /** Closes the index; resolves once no thread uses its file. */
  async close(): Promise<void> {
    const table = this.#table
    this.#table = undefined
    await table?.close()
  }

  get #records(): RecordTable {
    if (!this.#table) throw new Error('the tracker store is not open')
    return this.#table
  }

  /** One JSON file per record under <data>/tracker: read into the index in one transaction, then removed. */
  async #importLegacy(dir: string): Promise<void> {
    const files = await readdir(dir).catch(() => undefined)
    if (!files) return
    const records: FileRecord[] = []
    for (const file of files.filter((f) => f.endsWith('.json'))) {
      try {
        records.push(FileRecord.parse(JSON.parse(await readFile(join(dir, file), 'utf8'))))
      } catch (err) {
        this.#log.warn({ err: (err as Error).message, file }, 'skipping an unreadable tracker record of the earlier layout')
      }
    }
    const table = this.#records
    table.transaction(() => {
      for (const record of records) {
        const current = table.get(record.name)
        if (newestRecord([current, record]) === record) table.put(record, current)
      }
    })
    // Only once the import is committed: a crash before this imports again, which changes nothing.
    await rm(dir, { recursive: true, force: true })
    this.#log.info({ records: records.length }, 'imported the tracker records of the earlier data dir layout into the index')
  }

  get size(): number {
    return this.#records.size
  }

  /** Bumped by every change to the records kept here. */
  get changes(): number {
    return this.#records.changes
  }

  get(name: string): FileRecord | undefined {
    return this.#records.get(name)
  }

  /** One page of the records kept here, in name order (see listing.ts): whole where their position lies in `whole` (all when undefined), else brief. */
  page(query: PageQuery, whole?: Arc): Page {
    const table = this.#records
    return pageOf((from, inclusive) => table.scan(from, inclusive, whole), query)
  }

  /**
   * A put of `name` at `version` begins: remembered so that a put of an
   * older version finishing later is told it will not stay current.
   * Returns the newest other version a put has announced and not recorded.
   */
  intend(name: string, version: Version): Version | undefined {
    const now = this.#now()
    const intents = this.#intents.get(name) ?? new Map<Version, number>()
    for (const [v, until] of intents) if (until < now) intents.delete(v)
    let newest: Version | undefined
    for (const v of intents.keys()) if (v !== version && (newest === undefined || v > newest)) newest = v
    intents.set(version, now + INTENT_TTL_MS)
    this.#intents.set(name, intents)
    return newest
  }

  /**
   * Every record, a page at a time, letting the event loop run between pages: a walk over a million
   * records would otherwise hold it for seconds (long enough for the other guests to vote this peer out).
   */
  async *everyRecord(): AsyncGenerator<FileRecord> {
    for (let after = ''; ; ) {
      const page = this.#records.pageByName(after, WALK_PAGE)
      yield* page
      const last = page.at(-1)
      if (!last || page.length < WALK_PAGE) return
      after = last.name
      await yieldToLoop()
    }
  }

  /**
   * The records of `arc` in ring order, `limit` at a time (and any more at the last one's position: a chunk never
   * splits the names of one position). Each chunk is read when asked for, at one instant, with the stretch of
   * the arc it covers: the chunks tile the arc. The whole ring (from === to) is walked from position 0 up, as
   * the arc (TOP, TOP]: see walkBounds.
   */
  *chunks(arc: Arc, limit: number): Generator<{ arc: Arc; records: FileRecord[] }> {
    const { start, end } = walkBounds(arc)
    for (let from = start; ; ) {
      const records: FileRecord[] = []
      let through: string | undefined
      // (TOP, …] starts at position 0: positionRanges would read (TOP, TOP] as the whole ring, and must not.
      const ranges = from === end ? positionRanges({ from: '', to: end }) : positionRanges({ from, to: end })
      for (const range of ranges) {
        const got = this.#records.chunkByPosition(range, limit - records.length)
        records.push(...got.records)
        through = got.through
        if (through !== undefined) break
      }
      yield { arc: { from, to: through ?? end }, records }
      // A chunk that ends at the walk's end leaves nothing after it.
      if (through === undefined || through === end) return
      from = through
    }
  }

  /** The digest of the records kept here in each part of `arc` (anti-entropy between the trackers of an arc). */
  digestsIn(arc: Arc, parts: number): PartDigests {
    return this.#records.digestsIn(arc, parts)
  }

  /** The records kept here in the `selected` parts of `arc`, read as they are used, after the first `skip`. */
  inParts(arc: Arc, parts: number, selected: ReadonlySet<number>, skip = 0): Iterable<FileRecord> {
    return this.#records.inParts(arc, parts, selected, skip)
  }

  /** The records of the names outside `arc`. */
  outside(arc: Arc): Iterable<FileRecord> {
    return this.#records.outside(arc)
  }

  /**
   * watchMyPint: keeps `record` if it supersedes the current one. An
   * `exclusive` change (this tracker decides it) must also be of a newer
   * revision: two changes derived from the same revision tie, and the first
   * to arrive wins instead of the one the tie-break prefers, so the loser
   * learns it lost before it acts on the change (drops a moved fragment).
   * While `decisionsHeld` says why not, an exclusive change is refused
   * (ERR_NOT_ENOUGH_PEERS).
   */
  watch(record: FileRecord, options: { exclusive?: boolean } = {}): WatchResult {
    const held = options.exclusive ? this.#decisionsHeld() : undefined
    // Refused rather than decided on records that may be stale: the change is asked again on a later pass.
    if (held) throw new HousePartyError('ERR_NOT_ENOUGH_PEERS', `this peer does not decide changes to ${JSON.stringify(record.name)} now: ${held}`)
    const current = this.#records.get(record.name)
    const intents = this.#intents.get(record.name)
    intents?.delete(record.version)
    if (intents?.size === 0) this.#intents.delete(record.name)
    const now = this.#now()
    const newerIntent = [...(intents ?? [])].some(([v, until]) => v > record.version && until >= now)
    if (current && !supersedes(record, current, options.exclusive === true)) {
      return { accepted: false, current, replaced: null, newer: newerIntent || current.version > record.version }
    }
    this.#changes.note(record.name, current)
    this.#records.put(record, current)
    return { accepted: true, current: record, replaced: current ?? null, newer: newerIntent }
  }

  /** Resolves once every record written so far is committed: a tracker answers a watch only then. */
  committed(): Promise<void> {
    return this.#records.committed()
  }

  /** Forgets a record this peer no longer tracks. */
  forget(name: string): void {
    this.#changes.note(name, this.#records.get(name))
    this.#records.delete(name)
  }

  /**
   * The names written since the last call, each with its record before
   * (see ChangeLog); undefined when there were too many to log. Whoever
   * reads every record right after a call can follow every later change.
   */
  takeChanges(): ReadonlyMap<string, FileRecord | undefined> | undefined {
    return this.#changes.take()
  }

  /** The records of the names in ring buckets `from` to `to` (inclusive), read as they are used. */
  inBuckets(from: number, to: number): Iterable<FileRecord> {
    return this.#records.inBuckets(from, to)
  }
}

/** Whether `record` replaces `current`; an exclusive change of the same version must also be of a higher revision. */
function supersedes(record: FileRecord, current: FileRecord, exclusive: boolean): boolean {
  if (compareRecords(record, current) <= 0) return false
  return !exclusive || record.version !== current.version || record.revision > current.revision
}
