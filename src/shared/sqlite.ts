import type { FileHandle } from 'node:fs/promises'
import { open } from 'node:fs/promises'
import { DatabaseSync } from 'node:sqlite'
import { checkpoints } from './checkpoints.ts'

/** WAL pages (4 KiB) after which a commit checkpoints and the WAL starts over: 64 MiB, sixteen times SQLite's default. */
const WAL_RESTART_PAGES = 16_384

/**
 * Opens an embedded SQLite database in WAL mode with a `meta` table that
 * records its schema version: a database of a newer layout is refused
 * rather than misread. `synchronous` is NORMAL where a crash may lose the
 * last commits (others hold copies) or where GroupCommit syncs the WAL
 * itself; FULL fsyncs inside every commit, blocking the event loop. `create` runs the database's CREATE statements; `migrate`
 * brings a database of an older schema up to date first (in one transaction).
 */
export function openDatabase(
  path: string,
  options: { synchronous: 'NORMAL' | 'FULL'; schema: number; create: string; migrate?: (db: DatabaseSync, from: number) => void },
): DatabaseSync {
  const db = new DatabaseSync(path)
  try {
    // A worker checkpoints the database every second (checkpoints.ts). A commit still checkpoints once the WAL
    // holds WAL_RESTART_PAGES: by then the worker has copied nearly all of it, so that costs little, and it is
    // what lets the WAL start over (a checkpoint from another connection never catches it with nothing new).
    db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${options.synchronous}; PRAGMA busy_timeout = 5000;
      PRAGMA wal_autocheckpoint = ${WAL_RESTART_PAGES}`)
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
    checkpoints.open(path)
    return db
  } catch (err) {
    db.close()
    throw err
  }
}

/** Closes a database opened by openDatabase; resolves once no thread uses the file (its checkpoints are over). */
export async function closeDatabase(db: DatabaseSync, path: string): Promise<void> {
  if (db.isOpen) db.close()
  await checkpoints.close(path)
}

export function readMeta(db: DatabaseSync, key: string): string | undefined {
  return (db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value
}

export function writeMeta(db: DatabaseSync, key: string, value: string): void {
  db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(key, value)
}

interface Waiter {
  resolve: () => void
  reject: (err: Error) => void
}

/**
 * Group commit: the first write of a turn of the event loop opens a
 * transaction and the turn's end commits it, so the writes of many requests
 * answered in one turn share one commit. Reads on the same connection see
 * the writes at once; `committed()` waits for durability.
 *
 * With `syncWal` (the database's -wal file, in WAL mode with
 * synchronous=NORMAL), the commit itself does not fsync: the WAL is
 * fdatasynced afterwards on libuv's thread pool, off the event loop, and
 * only then are the waiters told. One sync runs at a time; the commits made
 * while it runs share the next one. SQLite syncs the WAL before each
 * checkpoint and the database after it, so every commit a waiter heard of
 * survives a power cut, and the event loop never waits for a disk flush
 * (synchronous=FULL would block it for one per commit).
 */
export class GroupCommit {
  readonly #db: DatabaseSync
  readonly #path: string
  readonly #walPath: string | undefined
  #wal: Promise<FileHandle> | undefined
  #open = false
  #waiting: Waiter[] = []
  /** Committed, waiting for the next sync of the WAL. */
  #unsynced: Waiter[] = []
  #syncing = false
  #drained: (() => void)[] = []

  /** `path` is the database's file (checkpointed after commits: see checkpoints.ts); `syncWal` syncs its WAL as described above. */
  constructor(db: DatabaseSync, path: string, options: { syncWal?: boolean } = {}) {
    this.#db = db
    this.#path = path
    this.#walPath = options.syncWal ? `${path}-wal` : undefined
  }

  /** Call before a write: opens this turn's transaction, unless one is open. */
  begin(): void {
    if (this.#open || this.#db.isTransaction) return
    this.#open = true
    this.#db.exec('BEGIN')
    setImmediate(() => this.flush())
  }

  /** Resolves once the writes made so far are committed and durable (at once if none is pending). */
  committed(): Promise<void> {
    if (!this.#open) return Promise.resolve()
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }))
  }

  /** Commits this turn's writes now; those waiting on them hear how it went once it is durable. */
  flush(): void {
    if (!this.#open) return
    this.#open = false
    const waiting = this.#waiting
    this.#waiting = []
    try {
      if (this.#db.isOpen && this.#db.isTransaction) this.#db.exec('COMMIT')
      checkpoints.written(this.#path)
    } catch (err) {
      if (this.#db.isOpen && this.#db.isTransaction) this.#db.exec('ROLLBACK')
      for (const w of waiting) w.reject(err as Error)
      return
    }
    if (!this.#walPath) {
      for (const w of waiting) w.resolve()
      return
    }
    this.#unsynced.push(...waiting)
    this.#syncNext()
  }

  #syncNext(): void {
    if (this.#syncing || this.#unsynced.length === 0) return
    const batch = this.#unsynced
    this.#unsynced = []
    this.#syncing = true
    this.#wal ??= open(this.#walPath as string, 'r')
    this.#wal
      .then((wal) => wal.datasync())
      .then(
        () => {
          for (const w of batch) w.resolve()
        },
        (err: Error) => {
          // The handle may be bad (a sync failed): open it again for the next one.
          this.#wal = undefined
          for (const w of batch) w.reject(err)
        },
      )
      .finally(() => {
        this.#syncing = false
        this.#syncNext()
        if (!this.#syncing) for (const done of this.#drained.splice(0)) done()
      })
  }

  /** Resolves once everything committed so far is durable (after `transaction`, whose commit does not wait). */
  sync(): Promise<void> {
    if (!this.#walPath) return Promise.resolve()
    return new Promise((resolve, reject) => {
      this.#unsynced.push({ resolve, reject })
      this.#syncNext()
    })
  }

  /** Resolves once no commit waits for its sync (before the database closes). */
  synced(): Promise<void> {
    if (!this.#syncing && this.#unsynced.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.#drained.push(resolve))
  }

  /** Closes the WAL's handle (after `synced()`). */
  async release(): Promise<void> {
    const wal = this.#wal
    this.#wal = undefined
    if (wal) await (await wal).close().catch(() => undefined)
  }

  /** Runs `fn` in one transaction of its own (an import, a handoff): one commit for many writes. */
  transaction<T>(fn: () => T): T {
    this.flush()
    this.#db.exec('BEGIN')
    try {
      const result = fn()
      this.#db.exec('COMMIT')
      checkpoints.written(this.#path)
      return result
    } catch (err) {
      this.#db.exec('ROLLBACK')
      throw err
    }
  }
}
