import type { DatabaseSync, StatementSync } from 'node:sqlite'
import { closeDatabase, GroupCommit, openDatabase, readMeta, writeMeta } from '../../shared/sqlite.ts'
import type { FileRecord, ListedRecord, Version } from '../protocol/index.ts'
import {
  type Arc,
  ArcParts,
  BucketDigests,
  bucketOf,
  bucketRange,
  type Member,
  membersIn,
  type PartDigests,
  recordFingerprint,
  ringPosition,
} from '../ring/index.ts'
import { type ListedRest, listedOf, listedRestOf } from './listed.ts'

/**
 * Bumped when the table's layout changes; an index of a newer layout is
 * refused rather than misread. 2: each record's ring position (`pos`,
 * indexed), so the records of one arc are a range. 3: each record's
 * version, revision and deleted flag in columns of their own, so a listing
 * page tells which record is newest without parsing the records it does
 * not show whole. 4: per ring bucket, the XOR of the records' fingerprints
 * and their count (`buckets`), written with each row change, so two
 * trackers compare an arc by digest instead of sending every record.
 * 5: what a listing shows of each record (`listed`, JSON), so a listing page
 * does not parse the whole record (three times its size: the fragments'
 * digests) of each name it shows; NULL in rows written before, which a page
 * reads from the record.
 */
const SCHEMA_VERSION = 5

/** Rows a scan reads in its first statement run, and at most in any later one. */
const SCAN_FIRST_BATCH = 16
const SCAN_LAST_BATCH = 1024

/**
 * A row as a listing page reads it: the version that decides which replica
 * is newest, and what the listing shows of the record only where the page
 * wants it whole.
 */
export interface ScannedRow {
  name: string
  version: Version
  revision: number
  deleted: boolean
  listed: ListedRecord | undefined
}

/** The highest ring position. */
const TOP_POSITION = 'ffffffffffffffff'

/**
 * `arc` as ranges of ring positions (from exclusive, to inclusive) that do
 * not wrap around, each one range of the position index: the arc itself,
 * two for an arc across the top of the ring, the whole ring when from === to.
 */
export function positionRanges(arc: Arc): { from: string; to: string }[] {
  if (arc.from === arc.to) return [{ from: '', to: TOP_POSITION }]
  return arc.from < arc.to
    ? [arc]
    : [
        { from: arc.from, to: TOP_POSITION },
        { from: '', to: arc.to },
      ]
}

/**
 * Where a walk over `arc` in ring order starts (exclusive) and ends: the arc's own ends, except for the whole
 * ring (from === to), walked from position 0 up as the arc (TOP, TOP].
 */
export function walkBounds(arc: Arc): { start: string; end: string } {
  return arc.from === arc.to ? { start: TOP_POSITION, end: TOP_POSITION } : { start: arc.from, end: arc.to }
}

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
  readonly #path: string
  readonly #commits: GroupCommit
  readonly #get: StatementSync
  readonly #put: StatementSync
  readonly #delete: StatementSync
  readonly #scanInclusive: StatementSync
  readonly #scanExclusive: StatementSync
  readonly #between: StatementSync
  readonly #buckets: StatementSync
  readonly #namesAfter: StatementSync
  readonly #arcFirst: StatementSync
  readonly #arcNext: StatementSync
  readonly #versionOf: StatementSync
  readonly #inBucket: StatementSync
  readonly #saveBucket: StatementSync
  readonly #dropBucket: StatementSync
  /** The records' fingerprints per ring bucket, as the `buckets` rows keep them: read at start, not counted again from the records. */
  readonly #digests = new BucketDigests()
  #rows: number
  #changes = 0

  constructor(path: string) {
    this.#path = path
    this.#db = openDatabase(path, {
      synchronous: 'NORMAL',
      schema: SCHEMA_VERSION,
      create: `CREATE TABLE IF NOT EXISTS records (name TEXT PRIMARY KEY, record TEXT NOT NULL, pos TEXT NOT NULL,
          version TEXT NOT NULL, revision INTEGER NOT NULL, deleted INTEGER NOT NULL, listed TEXT) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS records_by_pos ON records (pos);
        CREATE TABLE IF NOT EXISTS buckets (bucket INTEGER PRIMARY KEY, xor INTEGER NOT NULL, count INTEGER NOT NULL)`,
      migrate: (db, from) => {
        if (from < 2) addPositions(db)
        if (from < 3) addVersions(db)
        if (from < 5) addListed(db)
      },
    })
    this.#commits = new GroupCommit(this.#db, path)
    this.#get = this.#db.prepare('SELECT record FROM records WHERE name = ?')
    this.#put = this.#db.prepare('INSERT OR REPLACE INTO records (name, record, pos, version, revision, deleted, listed) VALUES (?, ?, ?, ?, ?, ?, ?)')
    this.#delete = this.#db.prepare('DELETE FROM records WHERE name = ?')
    // What a listing shows only for rows whose position lies in the arc (from, to]; from = to is the whole ring.
    // The record itself only for a row written before schema 5, without `listed`.
    const inArc = '(($from < $to AND pos > $from AND pos <= $to) OR ($from >= $to AND (pos > $from OR pos <= $to)))'
    const scan = (after: string): string => `SELECT name, version, revision, deleted, CASE WHEN ${inArc} THEN listed END AS listed,
        CASE WHEN listed IS NULL AND ${inArc} THEN record END AS record
        FROM records WHERE name ${after} $name ORDER BY name LIMIT $limit`
    this.#scanInclusive = this.#db.prepare(scan('>='))
    this.#scanExclusive = this.#db.prepare(scan('>'))
    this.#scanInclusive.setReturnArrays(true)
    this.#scanExclusive.setReturnArrays(true)
    this.#between = this.#db.prepare('SELECT record FROM records WHERE pos > ? AND pos <= ?')
    this.#buckets = this.#db.prepare('SELECT record FROM records WHERE pos >= ? AND pos < ?')
    this.#namesAfter = this.#db.prepare('SELECT record FROM records WHERE name > ? ORDER BY name LIMIT ?')
    this.#arcFirst = this.#db.prepare('SELECT record, pos, name FROM records WHERE pos > ? AND pos <= ? ORDER BY pos, name LIMIT ?')
    this.#arcNext = this.#db.prepare('SELECT record, pos, name FROM records WHERE (pos, name) > (?, ?) AND pos <= ? ORDER BY pos, name LIMIT ?')
    this.#versionOf = this.#db.prepare('SELECT version, revision, deleted FROM records WHERE name = ?')
    this.#inBucket = this.#db.prepare('SELECT name, pos, version, revision, deleted FROM records WHERE pos >= ? AND pos < ?')
    this.#saveBucket = this.#db.prepare('INSERT OR REPLACE INTO buckets (bucket, xor, count) VALUES (?, ?, ?)')
    this.#dropBucket = this.#db.prepare('DELETE FROM buckets WHERE bucket = ?')
    this.#rows = (this.#db.prepare('SELECT count(*) AS n FROM records').get() as { n: number }).n
    this.#loadDigests()
  }

  /**
   * Fills the bucket digests from the `buckets` rows: a start reads at most
   * one row per bucket. An index of an earlier layout has them counted once
   * from every record, and written.
   */
  #loadDigests(): void {
    if (readMeta(this.#db, 'buckets') === 'kept') {
      const rows = this.#db.prepare('SELECT bucket, xor, count FROM buckets')
      rows.setReadBigInts(true)
      for (const r of rows.iterate() as Iterable<{ bucket: bigint; xor: bigint; count: bigint }>) {
        const count = Number(r.count)
        this.#digests.load({ bucket: Number(r.bucket), xor: BigInt.asUintN(64, r.xor), count, bytes: 0, names: count })
      }
      return
    }
    for (const r of this.#db.prepare('SELECT name, pos, version, revision, deleted FROM records').iterate() as Iterable<PrintedRow>) {
      this.#digests.add(bucketOf(r.pos), rowPrint(r), 0)
    }
    this.#commits.transaction(() => {
      for (const totals of this.#digests.occupied()) this.#saveBucket.run(totals.bucket, BigInt.asIntN(64, totals.xor), totals.count)
      writeMeta(this.#db, 'buckets', 'kept')
    })
  }

  /** Writes one bucket's digest in the transaction open now, beside the row change that moved it. */
  #save(bucket: number): void {
    const { xor, count } = this.#digests.bucket(bucket)
    if (count === 0) this.#dropBucket.run(bucket)
    else this.#saveBucket.run(bucket, BigInt.asIntN(64, xor), count)
  }

  /** The records of one bucket, as the digests count them. */
  *#members(bucket: number): Generator<Member> {
    const { start, end } = bucketRange(bucket, bucket)
    for (const r of this.#inBucket.iterate(start, end) as Iterable<PrintedRow>) yield { key: r.name, position: r.pos, print: rowPrint(r) }
  }

  /** The digest of each part of `arc` (split as ArcParts splits it): what another tracker of the arc compares its own with. */
  digestsIn(arc: Arc, parts: number): PartDigests {
    return this.#digests.parts(new ArcParts(arc, parts), (bucket) => this.#members(bucket))
  }

  /** The records in the `selected` parts of `arc`, read as they are used, after the first `skip` (passed over unread). */
  *inParts(arc: Arc, parts: number, selected: ReadonlySet<number>, skip = 0): Generator<FileRecord> {
    let passed = 0
    for (const member of membersIn(new ArcParts(arc, parts), selected, (bucket) => this.#members(bucket))) {
      if (passed++ < skip) continue
      const record = this.get(member.key)
      if (record) yield record
    }
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

  /** Writes `record` over any of its name; `previous` is the one there (the caller has just read it). */
  put(record: FileRecord, previous: FileRecord | undefined): void {
    this.#commits.begin()
    const position = ringPosition(record.name)
    const bucket = bucketOf(position)
    const { name, version, revision, deleted } = record
    this.#put.run(name, JSON.stringify(record), position, version, revision, deleted ? 1 : 0, JSON.stringify(listedRestOf(record)))
    if (previous) this.#digests.remove(bucket, recordPrint(previous), 0)
    this.#digests.add(bucket, recordPrint(record), 0)
    this.#save(bucket)
    this.#changes++
    if (!previous) this.#rows++
  }

  delete(name: string): boolean {
    this.#commits.begin()
    const row = this.#versionOf.get(name) as Omit<PrintedRow, 'name' | 'pos'> | undefined
    const deleted = Number(this.#delete.run(name).changes) > 0
    if (deleted && row) {
      const bucket = bucketOf(ringPosition(name))
      this.#digests.remove(bucket, rowPrint({ ...row, name }), 0)
      this.#save(bucket)
    }
    if (deleted) this.#rows--
    this.#changes++
    return deleted
  }

  /** Resolves once the writes made so far are committed (at once if none is pending). */
  committed(): Promise<void> {
    return this.#commits.committed()
  }

  /**
   * Rows in name order from `from` on, read lazily, each record whole only
   * where its position lies in `whole` (all of them when it is undefined).
   */
  *scan(from: string, inclusive: boolean, whole: Arc | undefined): Generator<ScannedRow> {
    const arc = whole ?? { from: '', to: '' }
    type Row = [name: string, version: string, revision: number, deleted: number, listed: string | null, record: string | null]
    let statement = inclusive ? this.#scanInclusive : this.#scanExclusive
    let after = from
    // Rows come in batches, each one statement run: stepping a statement row by row from JavaScript costs
    // twice as much per row. The first batch is small, as a listing with a delimiter leaves a scan after a row or two.
    for (let limit = SCAN_FIRST_BATCH; ; limit = Math.min(limit * 4, SCAN_LAST_BATCH)) {
      const rows = statement.all({ from: arc.from, to: arc.to, name: after, limit }) as unknown as Row[]
      for (const [name, version, revision, flag, listed, record] of rows) {
        const deleted = flag !== 0
        const shown =
          listed !== null
            ? { name, version, revision, deleted, ...(JSON.parse(listed) as ListedRest) }
            : record !== null
              ? listedOf(JSON.parse(record) as FileRecord)
              : undefined
        yield { name, version, revision, deleted, listed: shown }
      }
      const last = rows.at(-1)
      if (!last || rows.length < limit) return
      after = last[0]
      statement = this.#scanExclusive
    }
  }

  /** The records whose names lie in `arc` (from exclusive, to inclusive; from === to is the whole ring), read lazily. */
  *inArc(arc: Arc): Generator<FileRecord> {
    for (const range of positionRanges(arc)) {
      for (const row of this.#between.iterate(range.from, range.to) as Iterable<{ record: string }>) yield JSON.parse(row.record) as FileRecord
    }
  }

  /** Up to `limit` records in name order after `after` (a page of a walk over every record). */
  pageByName(after: string, limit: number): FileRecord[] {
    return (this.#namesAfter.all(after, limit) as { record: string }[]).map((row) => JSON.parse(row.record) as FileRecord)
  }

  /**
   * The records whose positions lie in (from, to], in position order: the first `limit` of them, and any more at
   * the last one's position (two names at one 64-bit position are rare, but a chunk must not split them).
   * `through` is that last position when the range may hold more after it.
   */
  chunkByPosition(range: { from: string; to: string }, limit: number): { records: FileRecord[]; through?: string } {
    type Row = { record: string; pos: string; name: string }
    const parse = (row: Row): FileRecord => JSON.parse(row.record) as FileRecord
    // SQLite reads LIMIT -1 as no limit.
    const rows = this.#arcFirst.all(range.from, range.to, Number.isFinite(limit) ? limit : -1) as Row[]
    const tail = rows.at(-1)
    if (!tail || !Number.isFinite(limit) || rows.length < limit) return { records: rows.map(parse) }
    const same = this.#arcNext.all(tail.pos, tail.name, tail.pos, -1) as Row[]
    return { records: [...rows, ...same].map(parse), through: tail.pos }
  }

  /** The records whose names lie in ring buckets `from` to `to` (inclusive; a bucket is a position's first 16 bits), read lazily. */
  *inBuckets(from: number, to: number): Generator<FileRecord> {
    const { start, end } = bucketRange(from, to)
    for (const row of this.#buckets.iterate(start, end) as Iterable<{ record: string }>) yield JSON.parse(row.record) as FileRecord
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

  /** Commits what is pending and closes; resolves once no thread uses the file. */
  close(): Promise<void> {
    this.#commits.flush()
    return closeDatabase(this.#db, this.#path)
  }
}

/** The columns of a row its fingerprint is made of (and its position). */
interface PrintedRow {
  name: string
  pos: string
  version: string
  revision: number
  deleted: number
}

/** A record's fingerprint in the bucket digests. */
function recordPrint(r: Pick<FileRecord, 'name' | 'version' | 'revision' | 'deleted'>): bigint {
  return recordFingerprint(r.name, r.version, r.revision, r.deleted)
}

/** The same fingerprint, from a row's columns. */
function rowPrint(r: Omit<PrintedRow, 'pos'>): bigint {
  return recordFingerprint(r.name, r.version, r.revision, r.deleted !== 0)
}

/** Schema 3: every record's version, revision and deleted flag, copied out of its JSON once here. */
function addVersions(db: DatabaseSync): void {
  db.exec(`ALTER TABLE records ADD COLUMN version TEXT NOT NULL DEFAULT '';
    ALTER TABLE records ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE records ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
    UPDATE records SET version = json_extract(record, '$.version'), revision = json_extract(record, '$.revision'),
      deleted = json_extract(record, '$.deleted')`)
}

/** Schema 5: a column for what a listing shows of a record, left NULL in the rows there (pages read those from the record). */
function addListed(db: DatabaseSync): void {
  const columns = db.prepare('SELECT name FROM pragma_table_info(?)').all('records') as { name: string }[]
  // Idempotent: the schema number is only what the meta table says, and the table may have been created by this layout.
  if (!columns.some((c) => c.name === 'listed')) db.exec('ALTER TABLE records ADD COLUMN listed TEXT')
}

/** Schema 2: every record gets its ring position, computed once here. */
function addPositions(db: DatabaseSync): void {
  db.exec("ALTER TABLE records ADD COLUMN pos TEXT NOT NULL DEFAULT ''")
  const update = db.prepare('UPDATE records SET pos = ? WHERE name = ?')
  for (const { name } of db.prepare('SELECT name FROM records').all() as { name: string }[]) update.run(ringPosition(name), name)
}
