import type { DatabaseSync, StatementSync } from 'node:sqlite'
import { GroupCommit, openDatabase, readMeta, writeMeta } from '../../shared/sqlite.ts'
import type { HeldFragment, Manifest } from '../protocol/index.ts'

/**
 * Bumped when the table's layout changes; a table of a newer layout is
 * refused rather than misread. 2: small fragments kept inline (`data`).
 */
const SCHEMA_VERSION = 2

/** A row as loaded at start: what the census and placement need, without the chunk checksums (read on first use). */
export interface LoadedFragment {
  key: string
  held: HeldFragment
  /** The fragment's bytes are in its row, not in a file. */
  inline: boolean
}

interface Row {
  key: string
  name: string
  version: string
  idx: number
  size: number
  bytes: number
  digest: string
  hash: string
  created: number
  stored: number
  k: number
  m: number
  stripe: number
  inline: number
}

/**
 * The manifests of the fragments a peer holds, in <data>/fragments.db: one
 * row per fragment instead of a JSON file beside each, so a small fragment
 * costs one OS file, and the store opens by reading rows, not by walking
 * directories. A row exists only for a fragment already in place: the
 * fragment file is renamed into place first, then its row committed, and
 * only then is the fragment acknowledged.
 *
 * A row is acknowledged only once it survives a power cut, not only a crash:
 * the rows written in one turn of the event loop share one commit, and the
 * WAL is then fdatasynced off the event loop (GroupCommit with syncWal), so
 * a burst of small fragments costs few fsyncs and none blocks the peer.
 */
export class ManifestTable {
  readonly #db: DatabaseSync
  readonly #commits: GroupCommit
  readonly #put: StatementSync
  readonly #delete: StatementSync
  readonly #chunks: StatementSync
  readonly #all: StatementSync
  readonly #data: StatementSync

  constructor(path: string) {
    this.#db = openDatabase(path, {
      synchronous: 'NORMAL',
      schema: SCHEMA_VERSION,
      create: `CREATE TABLE IF NOT EXISTS fragments (
        key TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL, idx INTEGER NOT NULL, size INTEGER NOT NULL,
        bytes INTEGER NOT NULL, digest TEXT NOT NULL, hash TEXT NOT NULL, created INTEGER NOT NULL, stored INTEGER NOT NULL,
        k INTEGER NOT NULL, m INTEGER NOT NULL, stripe INTEGER NOT NULL, chunks TEXT NOT NULL, data BLOB) WITHOUT ROWID`,
      migrate: (db, from) => {
        if (from < 2) db.exec('ALTER TABLE fragments ADD COLUMN data BLOB')
      },
    })
    this.#commits = new GroupCommit(this.#db, { syncWal: `${path}-wal` })
    this.#put = this.#db.prepare('INSERT OR REPLACE INTO fragments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
    this.#data = this.#db.prepare('SELECT data FROM fragments WHERE key = ?')
    this.#delete = this.#db.prepare('DELETE FROM fragments WHERE key = ?')
    this.#chunks = this.#db.prepare('SELECT chunks FROM fragments WHERE key = ?')
    this.#all = this.#db.prepare(
      'SELECT key, name, version, idx, size, bytes, digest, hash, created, stored, k, m, stripe, data IS NOT NULL AS inline FROM fragments',
    )
  }

  meta(key: string): string | undefined {
    return readMeta(this.#db, key)
  }

  setMeta(key: string, value: string): void {
    writeMeta(this.#db, key, value)
  }

  /**
   * Records a fragment now in place, or with `data` a small fragment kept in
   * its row; resolves once the row is durable (its turn's commit).
   */
  put(key: string, manifest: Manifest, held: HeldFragment, data?: Uint8Array): Promise<void> {
    this.#commits.begin()
    this.insert(key, manifest, held, data)
    return this.#commits.committed()
  }

  /** The bytes of a fragment kept in its row; undefined if it has no row or lives in a file. */
  data(key: string): Buffer | undefined {
    const row = this.#data.get(key) as { data: Uint8Array | null } | undefined
    return row?.data ? Buffer.from(row.data.buffer, row.data.byteOffset, row.data.byteLength) : undefined
  }

  /** Writes a row in the transaction open now (see `transaction`). */
  insert(key: string, manifest: Manifest, held: HeldFragment, data?: Uint8Array): void {
    const { name, version, index, size, hash, created, coding, chunks } = manifest
    this.#put.run(
      key,
      name,
      version,
      index,
      size,
      held.bytes,
      held.digest,
      hash,
      created,
      held.stored,
      coding.k,
      coding.m,
      coding.stripeBytes,
      JSON.stringify(chunks),
      data ?? null,
    )
  }

  /** Forgets a fragment (its file is removed after: a row without its file is found by scrub, a file without its row by the sweep). */
  delete(key: string): void {
    this.#commits.begin()
    this.#delete.run(key)
  }

  /** The chunk checksums of a fragment, or undefined if there is no row. */
  chunks(key: string): string[] | undefined {
    const row = this.#chunks.get(key) as { chunks: string } | undefined
    return row ? (JSON.parse(row.chunks) as string[]) : undefined
  }

  /** Every fragment, as loaded at start. */
  *all(): Generator<LoadedFragment> {
    for (const r of this.#all.iterate() as Iterable<Row>) {
      const coding = { k: r.k, m: r.m, stripeBytes: r.stripe }
      const held = {
        name: r.name,
        version: r.version,
        index: r.idx,
        size: r.size,
        bytes: r.bytes,
        digest: r.digest,
        coding,
        hash: r.hash,
        created: r.created,
        stored: r.stored,
      }
      yield { key: r.key, held, inline: r.inline === 1 }
    }
  }

  /** Runs `fn` in one transaction (an import of the earlier layout); resolves once it is durable. */
  async transaction<T>(fn: () => T): Promise<T> {
    const result = this.#commits.transaction(fn)
    await this.#commits.sync()
    return result
  }

  /** Commits what is pending, waits for its sync, and closes. */
  async close(): Promise<void> {
    this.#commits.flush()
    await this.#commits.synced()
    if (this.#db.isOpen) this.#db.close()
    await this.#commits.release()
  }
}
