import { DatabaseSync } from 'node:sqlite'

/**
 * Opens an embedded SQLite database in WAL mode with a `meta` table that
 * records its schema version: a database of a newer layout is refused
 * rather than misread. `synchronous` is NORMAL where a crash may lose the
 * last commits (others hold copies), FULL where a commit is a promise made
 * to a client. `create` runs the database's CREATE statements; `migrate`
 * brings a database of an older schema up to date first (in one transaction).
 */
export function openDatabase(
  path: string,
  options: { synchronous: 'NORMAL' | 'FULL'; schema: number; create: string; migrate?: (db: DatabaseSync, from: number) => void },
): DatabaseSync {
  const db = new DatabaseSync(path)
  try {
    db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${options.synchronous}; PRAGMA busy_timeout = 5000`)
    db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID')
    const version = readMeta(db, 'schema')
    if (version && Number(version) > options.schema) {
      throw new Error(`${path} is of schema ${version}, newer than this peer's ${options.schema}: run a newer peer on this data dir`)
    }
    if (version && Number(version) < options.schema && options.migrate) {
      const migrate = options.migrate
      db.exec('BEGIN')
      try {
        migrate(db, Number(version))
        writeMeta(db, 'schema', String(options.schema))
        db.exec('COMMIT')
      } catch (err) {
        db.exec('ROLLBACK')
        throw err
      }
    }
    db.exec(options.create)
    writeMeta(db, 'schema', String(options.schema))
    return db
  } catch (err) {
    db.close()
    throw err
  }
}

export function readMeta(db: DatabaseSync, key: string): string | undefined {
  return (db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value
}

export function writeMeta(db: DatabaseSync, key: string, value: string): void {
  db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(key, value)
}

/**
 * Group commit: the first write of a turn of the event loop opens a
 * transaction and the turn's end commits it, so the writes of many requests
 * answered in one turn share one commit (and its fsync). Reads on the same
 * connection see the writes at once; `committed()` waits for durability.
 */
export class GroupCommit {
  readonly #db: DatabaseSync
  #open = false
  #waiting: { resolve: () => void; reject: (err: Error) => void }[] = []

  constructor(db: DatabaseSync) {
    this.#db = db
  }

  /** Call before a write: opens this turn's transaction, unless one is open. */
  begin(): void {
    if (this.#open || this.#db.isTransaction) return
    this.#open = true
    this.#db.exec('BEGIN')
    setImmediate(() => this.flush())
  }

  /** Resolves once the writes made so far are committed (at once if none is pending). */
  committed(): Promise<void> {
    if (!this.#open) return Promise.resolve()
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }))
  }

  /** Commits this turn's writes now; those waiting on them hear how it went. */
  flush(): void {
    if (!this.#open) return
    this.#open = false
    const waiting = this.#waiting
    this.#waiting = []
    try {
      if (this.#db.isOpen && this.#db.isTransaction) this.#db.exec('COMMIT')
      for (const w of waiting) w.resolve()
    } catch (err) {
      if (this.#db.isOpen && this.#db.isTransaction) this.#db.exec('ROLLBACK')
      for (const w of waiting) w.reject(err as Error)
    }
  }

  /** Runs `fn` in one transaction of its own (an import, a handoff): one commit for many writes. */
  transaction<T>(fn: () => T): T {
    this.flush()
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
}
