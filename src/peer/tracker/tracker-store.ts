import { mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../../shared/logger.ts'
import { FileRecord, type Version } from '../protocol/index.ts'
import { nameHash } from '../store/index.ts'
import { compareRecords } from './records.ts'

export interface WatchResult {
  /** The record was newer than what this tracker had, and is now current. */
  accepted: boolean
  current: FileRecord
  /** The record it displaced, if any. */
  replaced: FileRecord | null
  /** A newer version than this record is current, or a put of one has begun (so this one will not stay current). */
  newer: boolean
}

/** How long a put's intent is remembered: longer than any upload of one name should take between its start and its record. */
const INTENT_TTL_MS = 30 * 60_000

/**
 * The records this peer keeps as one of a file's trackers. Newer versions
 * (then higher revisions) win, so replicas that see updates in different
 * orders converge. Records survive a restart under <data>/tracker; they are
 * not fsynced because every record also lives on the other tracker replicas
 * and can be rebuilt from the manifests beside the fragments.
 */
export class TrackerStore {
  readonly #dir: string
  readonly #log: Logger
  readonly #records = new Map<string, FileRecord>()
  readonly #writes = new Map<string, Promise<void>>()
  /** name → versions of puts that began here and have not been recorded yet, with when they are forgotten. Kept in memory only. */
  readonly #intents = new Map<string, Map<Version, number>>()
  readonly #now: () => number

  constructor(dataDir: string, logger: Logger, now: () => number = Date.now) {
    this.#dir = join(dataDir, 'tracker')
    this.#log = logger
    this.#now = now
  }

  async open(): Promise<number> {
    await mkdir(this.#dir, { recursive: true })
    for (const file of await readdir(this.#dir)) {
      const path = join(this.#dir, file)
      if (!file.endsWith('.json')) {
        await unlink(path).catch(() => undefined)
        continue
      }
      try {
        const record = FileRecord.parse(JSON.parse(await readFile(path, 'utf8')))
        this.#records.set(record.name, record)
      } catch (err) {
        this.#log.warn({ err: (err as Error).message, file }, 'dropping an unreadable tracker record')
        await unlink(path).catch(() => undefined)
      }
    }
    return this.#records.size
  }

  get(name: string): FileRecord | undefined {
    return this.#records.get(name)
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

  list(): FileRecord[] {
    return [...this.#records.values()]
  }

  /**
   * watchMyPint: keeps `record` if it supersedes the current one. An
   * `exclusive` change (this tracker decides it) must also be of a newer
   * revision: two changes derived from the same revision tie, and the first
   * to arrive wins instead of the one the tie-break prefers, so the loser
   * learns it lost before it acts on the change (drops a moved fragment).
   */
  watch(record: FileRecord, options: { exclusive?: boolean } = {}): WatchResult {
    const current = this.#records.get(record.name)
    const intents = this.#intents.get(record.name)
    intents?.delete(record.version)
    if (intents?.size === 0) this.#intents.delete(record.name)
    const now = this.#now()
    const newerIntent = [...(intents ?? [])].some(([v, until]) => v > record.version && until >= now)
    if (current && !supersedes(record, current, options.exclusive === true)) {
      return { accepted: false, current, replaced: null, newer: newerIntent || current.version > record.version }
    }
    this.#records.set(record.name, record)
    this.#persist(record.name)
    return { accepted: true, current: record, replaced: current ?? null, newer: newerIntent }
  }

  /** Forgets a record this peer no longer tracks. */
  forget(name: string): void {
    if (this.#records.delete(name)) this.#persist(name)
  }

  /** Resolves when every pending write has reached the disk. */
  async flush(): Promise<void> {
    await Promise.all(this.#writes.values())
  }

  #persist(name: string): void {
    // Writes of one name run one after another, each writing the newest record, so the file never goes back in time.
    const previous = this.#writes.get(name) ?? Promise.resolve()
    const next = previous.then(() => this.#write(name))
    this.#writes.set(name, next)
    void next.finally(() => {
      if (this.#writes.get(name) === next) this.#writes.delete(name)
    })
  }

  async #write(name: string): Promise<void> {
    const file = join(this.#dir, `${nameHash(name)}.json`)
    const record = this.#records.get(name)
    try {
      if (!record) {
        await unlink(file).catch(() => undefined)
        return
      }
      const tmp = `${file}.${process.pid}.tmp`
      await writeFile(tmp, JSON.stringify(record))
      await rename(tmp, file)
    } catch (err) {
      this.#log.warn({ err: (err as Error).message, name }, 'could not persist a tracker record')
    }
  }
}

/** Whether `record` replaces `current`; an exclusive change of the same version must also be of a higher revision. */
function supersedes(record: FileRecord, current: FileRecord, exclusive: boolean): boolean {
  if (compareRecords(record, current) <= 0) return false
  return !exclusive || record.version !== current.version || record.revision > current.revision
}
