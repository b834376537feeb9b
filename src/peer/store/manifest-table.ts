import type { DatabaseSync, StatementSync } from 'node:sqlite'
import { closeDatabase, GroupCommit, openDatabase, readMeta, writeMeta } from '../../shared/sqlite.ts'
import type { HeldFragment, Manifest } from '../protocol/index.ts'
import { type BucketDigests, type BucketTotals, bucketOf, fingerprint } from '../ring/index.ts'
import { positionOf } from './layout.ts'

/**
 * Bumped when the table's layout changes; a table of a newer layout is
 * refused rather than misread. 2: small fragments kept inline (`data`).
 * 3: each row's census fingerprint (`print`). 4: each ring bucket's
 * totals in a `buckets` table, so a start reads buckets, not rows. 5: each
 * bucket also counts the file names it holds fragments of, so the files
 * held are a sum of bucket rows, not a scan of every row. 6: `seal`, the
 * salt and chunk tags of a fragment encrypted at rest. 7: a small
 * fragment's bytes in a row of `blobs`, not in its own row (see
 * ManifestTable); rows written before keep theirs in `data`.
 */
const SCHEMA_VERSION = 7

/** A fragment's row, without its chunk checksums or bytes. */
export interface FragmentRow {
  key: string
  held: HeldFragment
  /** The fragment's bytes are in its row, not in a file. */
  inline: boolean
  /** Its census fingerprint (ring/fingerprint). */
  print: bigint
}

/** One fragment as its readers need it: its row, its manifest, and its seal when encrypted at rest (salt and chunk tags). */
export interface StoredFragment {
  row: FragmentRow
  manifest: Manifest
  seal?: Buffer
}

/** What a start needs of each row: where it sits on the ring, its fingerprint, its size. */
export interface RowBrief {
  key: string
  print: bigint
  bytes: number
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
  print: string
  inline: number
}

/** Whether a row keeps its fragment's bytes: in `blobs` (schema 7 on) or in its own `data` (rows written before). */
const INLINE = '(blob IS NOT NULL OR data IS NOT NULL) AS inline'
const COLUMNS = `key, name, version, idx, size, bytes, digest, hash, created, stored, k, m, stripe, print, ${INLINE}`

/**
 * The manifests of the fragments a peer holds, in <data>/fragments.db: one
 * row per fragment. The table is the store's index: a peer keeps no entry
 * per fragment in memory, so its memory does not grow with what it holds,
 * and a start reads two short columns per row. Rows are keyed by
 * sha256(name)/version/index, so the rows of one name, or of one bucket of
 * the ring (the key's first four hex digits), are one range.
 *
 * A row exists only for a fragment in place: a fragment file is renamed
 * into place first, then its row written; a small fragment's bytes are in
 * a row of its own in `blobs`, the row naming it (a fragment's metadata
 * and its bytes in one row made most rows overflow a page: the table of
 * fragments was twice the size of the bytes, and every row written dirtied
 * a page in the middle of it; `blobs` is appended to, in rowid order, and
 * the rows of `fragments` stay short). A trigger deletes a blob with the
 * row that names it. A row is acknowledged only once it survives a power cut: the
 * rows written in one turn of the event loop share one commit, and the WAL
 * is then fdatasynced off the event loop (GroupCommit with syncWal).
 */
export class ManifestTable {
  readonly #db: DatabaseSync
  readonly #path: string
  readonly #commits: GroupCommit
  readonly #put: StatementSync
  readonly #putBlob: StatementSync
  readonly #delete: StatementSync
  readonly #fragment: StatementSync
  readonly #data: StatementSync
  readonly #range: StatementSync
  readonly #briefs: StatementSync
  readonly #all: StatementSync
  readonly #ofName: StatementSync
  readonly #brief: StatementSync
  readonly #page: StatementSync
  readonly #saveBucket: StatementSync
  readonly #dropBucket: StatementSync
  readonly #buckets: StatementSync

  constructor(path: string) {
    this.#path = path
    this.#db = openDatabase(path, {
      synchronous: 'NORMAL',
      schema: SCHEMA_VERSION,
      create: `CREATE TABLE IF NOT EXISTS fragments (
        key TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL, idx INTEGER NOT NULL, size INTEGER NOT NULL,
        bytes INTEGER NOT NULL, digest TEXT NOT NULL, hash TEXT NOT NULL, created INTEGER NOT NULL, stored INTEGER NOT NULL,
        k INTEGER NOT NULL, m INTEGER NOT NULL, stripe INTEGER NOT NULL, chunks TEXT NOT NULL, data BLOB, print TEXT NOT NULL, seal BLOB,
        blob INTEGER) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
        CREATE TRIGGER IF NOT EXISTS blob_goes_with_its_row AFTER DELETE ON fragments WHEN old.blob IS NOT NULL
          BEGIN DELETE FROM blobs WHERE id = old.blob; END;
        CREATE TABLE IF NOT EXISTS buckets (bucket INTEGER PRIMARY KEY, xor INTEGER NOT NULL, count INTEGER NOT NULL, bytes INTEGER NOT NULL,
          names INTEGER NOT NULL)`,
      migrate: (db, from) => {
        if (from < 2) db.exec('ALTER TABLE fragments ADD COLUMN data BLOB')
        if (from < 3) addPrints(db)
        // The bucket rows are counted again from the fragment rows on open (loadDigests), names included.
        if (from < 5) db.exec("DROP TABLE IF EXISTS buckets; DELETE FROM meta WHERE key = 'buckets'")
        if (from < 6) db.exec('ALTER TABLE fragments ADD COLUMN seal BLOB')
        if (from < 7) db.exec('ALTER TABLE fragments ADD COLUMN blob INTEGER')
      },
    })
    // A row replaced (INSERT OR REPLACE) is deleted first: with recursive triggers on, that deletion fires the
    // trigger that deletes its blob, as a DELETE does.
    this.#db.exec('PRAGMA recursive_triggers = ON')
    this.#commits = new GroupCommit(this.#db, path, { syncWal: true })
    this.#put = this.#db.prepare(
      'INSERT OR REPLACE INTO fragments (key, name, version, idx, size, bytes, digest, hash, created, stored, k, m, stripe, chunks, blob, print, seal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    )
    this.#putBlob = this.#db.prepare('INSERT INTO blobs (data) VALUES (?)')
    this.#delete = this.#db.prepare('DELETE FROM fragments WHERE key = ?')
    this.#fragment = this.#db.prepare(`SELECT ${COLUMNS}, chunks, seal FROM fragments WHERE key = ?`)
    this.#data = this.#db.prepare('SELECT coalesce(b.data, f.data) AS data FROM fragments f LEFT JOIN blobs b ON b.id = f.blob WHERE f.key = ?')
    this.#range = this.#db.prepare(`SELECT ${COLUMNS} FROM fragments WHERE key >= ? AND key < ? ORDER BY key`)
    this.#briefs = this.#db.prepare(`SELECT key, print, bytes, ${INLINE} FROM fragments ORDER BY key`)
    this.#all = this.#db.prepare(`SELECT ${COLUMNS} FROM fragments`)
    this.#ofName = this.#db.prepare('SELECT 1 FROM fragments WHERE key >= ? AND key < ? LIMIT 1')
    this.#page = this.#db.prepare(`SELECT ${COLUMNS} FROM fragments WHERE key > ? ORDER BY key LIMIT ?`)
    this.#brief = this.#db.prepare(`SELECT print, bytes, ${INLINE} FROM fragments WHERE key = ?`)
    this.#saveBucket = this.#db.prepare('INSERT OR REPLACE INTO buckets (bucket, xor, count, bytes, names) VALUES (?, ?, ?, ?, ?)')
    this.#dropBucket = this.#db.prepare('DELETE FROM buckets WHERE bucket = ?')
    this.#buckets = this.#db.prepare('SELECT bucket, xor, count, bytes, names FROM buckets')
    this.#buckets.setReadBigInts(true)
  }

  /**
   * Writes one ring bucket's totals in the transaction open now, beside the
   * row change that moved them: they commit (or roll back) together, so a
   * start reads the buckets, not every row.
   */
  saveBucket(totals: BucketTotals): void {
    this.#commits.begin()
    if (totals.count === 0) this.#dropBucket.run(totals.bucket)
    else this.#saveBucket.run(totals.bucket, BigInt.asIntN(64, totals.xor), totals.count, totals.bytes, totals.names)
  }

  /**
   * Fills `digests` from the bucket rows: a start reads at most one row per
   * ring bucket, whatever the fragments held. A table of an earlier schema
   * (or one imported from fragment files) has its buckets computed once,
   * from every row, and written.
   */
  async loadDigests(digests: BucketDigests): Promise<void> {
    if (this.meta('buckets') === 'kept') {
      type Row = { bucket: bigint; xor: bigint; count: bigint; bytes: bigint; names: bigint }
      for (const r of this.#buckets.iterate() as Iterable<Row>) {
        digests.load({ bucket: Number(r.bucket), xor: BigInt.asUintN(64, r.xor), count: Number(r.count), bytes: Number(r.bytes), names: Number(r.names) })
      }
      return
    }
    let name = ''
    for (const { key, print, bytes } of this.briefs()) {
      const bucket = bucketOf(positionOf(key))
      digests.add(bucket, print, bytes)
      // Rows come in key order, and a name's rows are one run of keys (its hash, then version and index).
      if (nameOf(key) !== name) digests.nameCame(bucket)
      name = nameOf(key)
    }
    await this.transaction(() => {
      for (const totals of digests.occupied()) this.saveBucket(totals)
      this.setMeta('buckets', 'kept')
    })
  }

  meta(key: string): string | undefined {
    return readMeta(this.#db, key)
  }

  setMeta(key: string, value: string): void {
    writeMeta(this.#db, key, value)
  }

  /**
   * Records a fragment now in place, or with `data` a small fragment kept in
   * its row; resolves once the row is durable (its turn's commit, synced).
   */
  put(key: string, manifest: Manifest, held: HeldFragment, data?: Uint8Array, seal?: Uint8Array): { print: bigint; committed: Promise<void> } {
    this.#commits.begin()
    const print = this.insert(key, manifest, held, data, seal)
    return { print, committed: this.#commits.committed() }
  }

  /** Writes a row in the transaction open now (see `transaction`); returns its fingerprint. */
  insert(key: string, manifest: Manifest, held: HeldFragment, data?: Uint8Array, seal?: Uint8Array): bigint {
    const { name, version, index, size, hash, created, coding, chunks } = manifest
    const print = fingerprint(name, version, index, held.digest)
    const hex = print.toString(16).padStart(16, '0')
    const { k, m, stripeBytes } = coding
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
      k,
      m,
      stripeBytes,
      JSON.stringify(chunks),
      data ? this.#putBlob.run(data).lastInsertRowid : null,
      hex,
      seal ?? null,
    )
    return print
  }

  /** What a replaced row counted for, or undefined if there is none. */
  brief(key: string): RowBrief | undefined {
    const r = this.#brief.get(key) as { print: string; bytes: number; inline: number } | undefined
    return r && { key, print: BigInt(`0x${r.print}`), bytes: r.bytes, inline: r.inline === 1 }
  }

  /** Forgets a fragment (its file is removed after: a row without its file is found by scrub, a file without its row by the sweep). */
  delete(key: string): void {
    this.#commits.begin()
    this.#delete.run(key)
  }

  /** One fragment's row and its manifest (its chunk checksums read with it), and its seal when encrypted at rest; or undefined. */
  fragment(key: string): StoredFragment | undefined {
    const r = this.#fragment.get(key) as (Row & { chunks: string; seal: Uint8Array | null }) | undefined
    if (!r) return undefined
    const row = fromRow(r)
    const { name, version, index, size, hash, created, coding } = row.held
    const manifest = { name, version, index, size, hash, created, coding, chunks: JSON.parse(r.chunks) as string[] }
    return { row, manifest, ...(r.seal ? { seal: Buffer.from(r.seal) } : {}) }
  }

  /** The bytes of a fragment kept in its row; undefined if it has no row or lives in a file. */
  data(key: string): Buffer | undefined {
    const row = this.#data.get(key) as { data: Uint8Array | null } | undefined
    return row?.data ? Buffer.from(row.data.buffer, row.data.byteOffset, row.data.byteLength) : undefined
  }

  /** The rows whose keys lie in [from, to), in key order: one name (sha256 prefix) or one ring bucket (its first hex digits). */
  *range(from: string, to: string): Generator<FragmentRow> {
    for (const r of this.#range.iterate(from, to) as Iterable<Row>) yield fromRow(r)
  }

  /** Up to `limit` rows after `after` in key order: a scan in pages, each page a short read. */
  page(after: string, limit: number): FragmentRow[] {
    return (this.#page.all(after, limit) as unknown as Row[]).map(fromRow)
  }

  /** Every row, briefly: what a start reads once, to count the buckets of a table of an earlier schema. */
  *briefs(): Generator<RowBrief> {
    for (const r of this.#briefs.iterate() as Iterable<{ key: string; print: string; bytes: number; inline: number }>) {
      yield { key: r.key, print: BigInt(`0x${r.print}`), bytes: r.bytes, inline: r.inline === 1 }
    }
  }

  /** Every fragment. */
  *all(): Generator<FragmentRow> {
    for (const r of this.#all.iterate() as Iterable<Row>) yield fromRow(r)
  }

  /** Whether any row is of the same file name as `key` (its name's rows are one range of keys). */
  holdsName(key: string): boolean {
    const name = nameOf(key)
    return this.#ofName.get(`${name}/`, `${name}0`) !== undefined
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
    await closeDatabase(this.#db, this.#path)
    await this.#commits.release()
  }
}

function fromRow(r: Row): FragmentRow {
  const held: HeldFragment = {
    name: r.name,
    version: r.version,
    index: r.idx,
    size: r.size,
    bytes: r.bytes,
    digest: r.digest,
    coding: { k: r.k, m: r.m, stripeBytes: r.stripe },
    hash: r.hash,
    created: r.created,
    stored: r.stored,
  }
  return { key: r.key, held, inline: r.inline === 1, print: BigInt(`0x${r.print}`) }
}

/** The part of a fragment key that names its file: the hash of the name, before the version and index. */
function nameOf(key: string): string {
  return key.slice(0, key.indexOf('/'))
}

/** Schema 3: every row gets its fingerprint, computed once here. */
function addPrints(db: DatabaseSync): void {
  db.exec("ALTER TABLE fragments ADD COLUMN print TEXT NOT NULL DEFAULT ''")
  const update = db.prepare('UPDATE fragments SET print = ? WHERE key = ?')
  const rows = db.prepare('SELECT key, name, version, idx, digest FROM fragments').all() as {
    key: string
    name: string
    version: string
    idx: number
    digest: string
  }[]
  for (const r of rows) update.run(fingerprint(r.name, r.version, r.idx, r.digest).toString(16).padStart(16, '0'), r.key)
}
