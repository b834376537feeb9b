import type { DatabaseSync, StatementSync } from 'node:sqlite'
import { GroupCommit, openDatabase } from '../../shared/sqlite.ts'
import type { FileRecord } from '../protocol/index.ts'
import { type Arc, ringPosition } from '../ring/index.ts'

/**
 * Bumped when the table's layout changes; an index of a newer layout is
 * refused rather than misread. 2: each record's ring position (`pos`,
 * indexed), so the records of one arc are a range.
 */
const SCHEMA_VERSION = 2

/**
 * Tracker records in an embedded SQLite database (<data>/index.db), one row
 * per name under its primary key: a lookup or an ordered page reads only the
 * rows it needs, so opening it costs the same for ten records or a million.
 *
 * WAL with synchronous=NORMAL: a crash leaves the table consistent (a write
 * is all there or not at all) and may lose the last writes before the crash,
 * which the other tracker replicas and the fragments' manifests
 * make good, as they did for the per-record files this table replaces.
 */
export class RecordTable {
  readonly #db: DatabaseSync
  readonly #commits: GroupCommit
  readonly #get: StatementSync
  readonly #put: StatementSync
  readonly #delete: StatementSync
  readonly #fromInclusive: StatementSync
  readonly #fromExclusive: StatementSync
  readonly #between: StatementSync
  readonly #outside: StatementSync
  #rows: number
  #changes = 0

  constructor(path: string) {
    this.#db = openDatabase(path, {
      synchronous: 'NORMAL',
      schema: SCHEMA_VERSION,
      create: `CREATE TABLE IF NOT EXISTS records (name TEXT PRIMARY KEY, record TEXT NOT NULL, pos TEXT NOT NULL) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS records_by_pos ON records (pos)`,
      migrate: (db, from) => {
        if (from < 2) addPositions(db)
      },
    })
    this.#commits = new GroupCommit(this.#db)
    this.#get = this.#db.prepare('SELECT record FROM records WHERE name = ?')
    this.#put = this.#db.prepare('INSERT OR REPLACE INTO records (name, record, pos) VALUES (?, ?, ?)')
    this.#delete = this.#db.prepare('DELETE FROM records WHERE name = ?')
    this.#fromInclusive = this.#db.prepare('SELECT record FROM records WHERE name >= ? ORDER BY name')
    this.#fromExclusive = this.#db.prepare('SELECT record FROM records WHERE name > ? ORDER BY name')
    this.#between = this.#db.prepare('SELECT record FROM records WHERE pos > ? AND pos <= ?')
    this.#outside = this.#db.prepare('SELECT record FROM records WHERE pos <= ? OR pos > ?')
    this.#rows = (this.#db.prepare('SELECT count(*) AS n FROM records').get() as { n: number }).n
  }

  get size(): number {
    return this.#rows
  }

  /** Bumped by every write: a reader that saw the same number twice saw the same records. */
  get changes(): number {
    return this.#changes
  }

  get(name: string): FileRecord | undefined {
    const row = this.#get.get(name) as { record: string } | undefined
    return row ? (JSON.parse(row.record) as FileRecord) : undefined
  }

  /** Writes `record` over any of its name; `replacing` says whether one was there (the caller has just read it). */
  put(record: FileRecord, replacing: boolean): void {
    this.#commits.begin()
    this.#put.run(record.name, JSON.stringify(record), ringPosition(record.name))
    this.#changes++
    if (!replacing) this.#rows++
  }

  delete(name: string): boolean {
    this.#commits.begin()
    const deleted = Number(this.#delete.run(name).changes) > 0
    if (deleted) this.#rows--
    this.#changes++
    return deleted
  }

  /** Resolves once the writes made so far are committed (at once if none is pending). */
  committed(): Promise<void> {
    return this.#commits.committed()
  }

  /** Records in name order from `from` on, read lazily: stop iterating and nothing more is read. */
  *from(from: string, inclusive: boolean): Generator<FileRecord> {
    const statement = inclusive ? this.#fromInclusive : this.#fromExclusive
    for (const row of statement.iterate(from) as Iterable<{ record: string }>) yield JSON.parse(row.record) as FileRecord
  }

  /** The records whose names lie in `arc` (from exclusive, to inclusive; from === to is the whole ring), read lazily. */
  *inArc(arc: Arc): Generator<FileRecord> {
    const { from, to } = arc
    const rows = from === to ? this.#fromInclusive.iterate('') : from < to ? this.#between.iterate(from, to) : this.#outside.iterate(to, from)
    for (const row of rows as Iterable<{ record: string }>) yield JSON.parse(row.record) as FileRecord
  }

  /** The records whose names lie outside `arc`, read lazily. */
  *outside(arc: Arc): Generator<FileRecord> {
    const { from, to } = arc
    if (from === to) return
    yield* this.inArc({ from: to, to: from })
  }

  /** Runs `fn` in one transaction: one commit for many writes (an import, a handoff). */
  transaction<T>(fn: () => T): T {
    return this.#commits.transaction(fn)
  }

  close(): void {
    this.#commits.flush()
    if (this.#db.isOpen) this.#db.close()
  }
}

/** Schema 2: every record gets its ring position, computed once here. */
function addPositions(db: DatabaseSync): void {
  db.exec("ALTER TABLE records ADD COLUMN pos TEXT NOT NULL DEFAULT ''")
  const update = db.prepare('UPDATE records SET pos = ? WHERE name = ?')
  for (const { name } of db.prepare('SELECT name FROM records').all() as { name: string }[]) update.run(ringPosition(name), name)
}
