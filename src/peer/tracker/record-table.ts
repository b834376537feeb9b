import { DatabaseSync, type StatementSync } from 'node:sqlite'
import type { FileRecord } from '../protocol/index.ts'

/** Bumped when the table's layout changes; an index of a newer layout is refused rather than misread. */
const SCHEMA_VERSION = 1

/**
 * Tracker records in an embedded SQLite database (<data>/index.db), one row
 * per name under its primary key: a lookup or an ordered page reads only the
 * rows it needs, so opening it costs the same for ten records or a million.
 *
 * WAL with synchronous=NORMAL: a crash leaves the table consistent (a write
 * is all there or not at all) and may lose the last writes before the crash,
 * which the other tracker replicas and the manifests beside the fragments
 * make good, as they did for the per-record files this table replaces.
 */
export class RecordTable {
  readonly #db: DatabaseSync
  readonly #get: StatementSync
  readonly #put: StatementSync
  readonly #delete: StatementSync
  readonly #fromInclusive: StatementSync
  readonly #fromExclusive: StatementSync
  #rows: number
  /** A transaction is open for the writes of this turn of the event loop: they share one commit. */
  #batching = false

  constructor(path: string) {
    this.#db = new DatabaseSync(path)
    try {
      this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000')
      this.#db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID')
      const version = this.#db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string } | undefined
      if (version && Number(version.value) > SCHEMA_VERSION) {
        throw new Error(`${path} is of schema ${version.value}, newer than this peer's ${SCHEMA_VERSION}: run a newer peer on this data dir`)
      }
      this.#db.exec('CREATE TABLE IF NOT EXISTS records (name TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID')
      this.#db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)").run(String(SCHEMA_VERSION))
    } catch (err) {
      this.#db.close()
      throw err
    }
    this.#get = this.#db.prepare('SELECT record FROM records WHERE name = ?')
    this.#put = this.#db.prepare('INSERT OR REPLACE INTO records (name, record) VALUES (?, ?)')
    this.#delete = this.#db.prepare('DELETE FROM records WHERE name = ?')
    this.#fromInclusive = this.#db.prepare('SELECT record FROM records WHERE name >= ? ORDER BY name')
    this.#fromExclusive = this.#db.prepare('SELECT record FROM records WHERE name > ? ORDER BY name')
    this.#rows = (this.#db.prepare('SELECT count(*) AS n FROM records').get() as { n: number }).n
  }

  get size(): number {
    return this.#rows
  }

  get(name: string): FileRecord | undefined {
    const row = this.#get.get(name) as { record: string } | undefined
    return row ? (JSON.parse(row.record) as FileRecord) : undefined
  }

  /** Writes `record` over any of its name; `replacing` says whether one was there (the caller has just read it). */
  put(record: FileRecord, replacing: boolean): void {
    this.#batch()
    this.#put.run(record.name, JSON.stringify(record))
    if (!replacing) this.#rows++
  }

  delete(name: string): boolean {
    this.#batch()
    const deleted = Number(this.#delete.run(name).changes) > 0
    if (deleted) this.#rows--
    return deleted
  }

  /** Records in name order from `from` on, read lazily: stop iterating and nothing more is read. */
  *from(from: string, inclusive: boolean): Generator<FileRecord> {
    const statement = inclusive ? this.#fromInclusive : this.#fromExclusive
    for (const row of statement.iterate(from) as Iterable<{ record: string }>) yield JSON.parse(row.record) as FileRecord
  }

  /**
   * Group commit: the first write of a turn of the event loop opens a transaction and the turn's end commits it,
   * so the writes of many requests answered in one turn share one commit. Reads on this connection see them at once.
   */
  #batch(): void {
    if (this.#batching || this.#db.isTransaction) return
    this.#batching = true
    this.#db.exec('BEGIN')
    setImmediate(() => this.#commit())
  }

  #commit(): void {
    if (!this.#batching) return
    this.#batching = false
    if (this.#db.isOpen && this.#db.isTransaction) this.#db.exec('COMMIT')
  }

  /** Runs `fn` in one transaction: one commit for many writes (an import, a handoff). */
  transaction<T>(fn: () => T): T {
    this.#commit()
    this.#db.exec('BEGIN')
    try {
      const result = fn()
      this.#db.exec('COMMIT')
      return result
    } catch (err) {
      this.#db.exec('ROLLBACK')
      throw err
    }
  }

  close(): void {
    this.#commit()
    if (this.#db.isOpen) this.#db.close()
  }
}
