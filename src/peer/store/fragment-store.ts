import { randomBytes } from 'node:crypto'
import { mkdir, open, rename, rm, rmdir, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { HousePartyError } from '../../shared/errors.ts'
import { InFlight } from '../../shared/lifecycle.ts'
import type { Logger } from '../../shared/logger.ts'
import { chunkBytes, chunkChecksum, chunkOffset, fragmentDigest, stripeCount } from '../codec/index.ts'
import type { Coding, HeldFragment, HoldTrailer, Manifest, Version } from '../protocol/index.ts'
import { type Arc, ArcParts, BucketDigests, bucketOf, bucketRange, type Member, membersIn, type PartDigests } from '../ring/index.ts'
import { AtRestKey } from './at-rest.ts'
import { fragmentPath, heldOf, keyOf, nameHash, positionOf, sweepLeftovers, syncDir } from './layout.ts'
import { importManifestFiles } from './legacy.ts'
import { type FragmentRow, ManifestTable, type RowBrief, type StoredFragment } from './manifest-table.ts'
import { type ChunkBuffers, ChunkReader, chunkStream, type FragmentBytes, fileBytes, memoryBytes, openedBytes, verifyChunks } from './reader.ts'
import { type FragmentInstaller, type FragmentKey, FragmentWriter } from './writer.ts'

/** A held fragment and its key in the table. */
type Held = StoredFragment & { k: string }

/**
 * Fragments on disk, under <data>/fragments/<h[0:2]>/<h>/<version>.<index>.frag
 * where h is the sha256 of the file name, with their manifests as rows of
 * <data>/fragments.db (ManifestTable). Names never become paths, so no name
 * can escape the data directory. A small fragment (one chunk, sent whole by
 * `stash`) lives in its row instead of a file: no file, directory or fsync of
 * its own, and its durability is the commit it shares with the other rows
 * written in the same turn.
 *
 * A fragment is written to <data>/tmp first, fsynced, renamed into place,
 * and then its row is committed: a row means a complete, verified fragment.
 * Leftovers of a crash are a fragment file without a row (removed by a sweep
 * that runs in the background after open(), so a peer holding a million
 * fragments starts without walking them) and temporary files (removed by
 * open()). A fragment damaged or lost on disk is found by scrub.
 */
export type StoreStats = { files: number; fragments: number; bytes: number }

export class FragmentStore implements FragmentInstaller {
  readonly #dir: string
  readonly #log: Logger
  /** What the census compares instead of listing every fragment. */
  readonly #digests = new BucketDigests()
  /** Set during a graceful leave: new fragments are refused, so puts and repairs place them elsewhere. */
  draining = false
  /** Fragments being received: a graceful leave waits for them, since each may land after its listing. */
  readonly #writes = new InFlight()
  #table: ManifestTable | undefined
  /** Keys between their rename into place and their committed row: the sweep must not take them for leftovers. */
  readonly #installing = new Set<string>()
  /** The one file the sweep is removing now: an install of that very key waits for it. */
  #sweepingNow: { key: string; done: Promise<unknown> } | undefined
  readonly #stopSweep = new AbortController()
  #sweeping: Promise<void> = Promise.resolve()

  /** When a fragment is stored (its age decides whether an unrecorded one may still belong to a put under way). */
  readonly #now: () => number
  /** Where the key that wraps this volume's data key is ('': fragments in clear); #atRest, once open. */
  readonly #atRestKeyFile: string
  #atRest: AtRestKey | undefined

  constructor(dataDir: string, logger: Logger, now: () => number = Date.now, atRestKeyFile = '') {
    this.#dir = dataDir
    this.#log = logger
    this.#now = now
    this.#atRestKeyFile = atRestKeyFile
  }

  get #tmp(): string {
    return join(this.#dir, 'tmp')
  }

  /** Cleans temporary files, converts a data dir of the earlier layout, and loads the rows of complete fragments. */
  async open(): Promise<{ fragments: number; cleaned: number }> {
    this.#atRest = await AtRestKey.open(this.#dir, this.#atRestKeyFile, this.#log)
    await rm(this.#tmp, { recursive: true, force: true })
    await mkdir(this.#tmp, { recursive: true })
    const root = join(this.#dir, 'fragments')
    await mkdir(root, { recursive: true })
    const table = new ManifestTable(join(this.#dir, 'fragments.db'))
    this.#table = table
    let cleaned = 0
    if (table.meta('layout') !== 'table') {
      cleaned = await importManifestFiles(root, table, { pathOf: (m) => this.#pathOf(m), keyOf, heldOf }, this.#log)
    }
    // The census digests and totals, from the table's bucket rows: a start reads buckets, not fragments.
    await table.loadDigests(this.#digests)
    this.#sweeping = this.#sweep(root, this.#stopSweep.signal).catch((err: Error) => this.#log.warn({ err: err.message }, 'sweep of leftover fragments failed'))
    return { fragments: this.count, cleaned }
  }

  /** Stops the sweep and closes the manifest table. */
  async close(): Promise<void> {
    this.#stopSweep.abort()
    await this.#sweeping
    await this.#table?.close()
    this.#table = undefined
  }

  /** Resolves once the sweep that open() started is done (tests, and a leave that wants an exact listing). */
  swept(): Promise<void> {
    return this.#sweeping
  }

  /** Removes fragment files without a row: a crash came between their rename into place and their commit. */
  async #sweep(root: string, signal: AbortSignal): Promise<void> {
    const removed = await sweepLeftovers(
      root,
      (key) => this.#rows.brief(key)?.inline === false || this.#installing.has(key),
      (key, done) => {
        this.#sweepingNow = done && { key, done }
      },
      signal,
    )
    if (removed > 0) this.#log.warn({ removed }, 'removed fragment files a crash left without their manifest')
  }

  get #rows(): ManifestTable {
    if (!this.#table) throw new Error('the fragment store is not open')
    return this.#table
  }

  #pathOf(key: FragmentKey): string {
    return fragmentPath(this.#dir, key)
  }

  /** How many fragments are held (kept as they come and go: every pong reports it, so it must not cost a walk of the table). */
  get count(): number {
    return this.#digests.total.fragments
  }

  /** Bytes of all fragments held. */
  get bytes(): number {
    return this.#digests.total.bytes
  }

  /** A row now counts: in the totals and the census digests, and in its bucket's row (written in the row's transaction). */
  #added(key: string, print: bigint, bytes: number): void {
    const bucket = bucketOf(positionOf(key))
    this.#digests.add(bucket, print, bytes)
    this.#rows.saveBucket(this.#digests.bucket(bucket))
  }

  #removed(key: string, print: bigint, bytes: number): void {
    const bucket = bucketOf(positionOf(key))
    this.#digests.remove(bucket, print, bytes)
    this.#rows.saveBucket(this.#digests.bucket(bucket))
  }

  /** Counts a file name that had no fragment here, or had its last one go (before the row change that does it saves the bucket row). */
  #nameCame(key: string): void {
    this.#digests.nameCame(bucketOf(positionOf(key)))
  }

  #nameWent(key: string): void {
    this.#digests.nameWent(bucketOf(positionOf(key)))
  }

  /**
   * Writes a fragment's row and counts it at once (a drop that follows sees
   * it), replacing any row of the same key; if the commit fails, the count
   * goes back to what the table holds.
   */
  async #record(key: string, manifest: Manifest, held: HeldFragment, data?: Buffer, seal?: Buffer): Promise<RowBrief | undefined> {
    const rows = this.#rows
    // A name with no row here (the usual put) has no row at this key either: one lookup, not two.
    const newName = !rows.holdsName(key)
    const before = newName ? undefined : rows.brief(key)
    const { print, committed } = rows.put(key, manifest, held, data, seal)
    if (before) this.#removed(key, before.print, before.bytes)
    if (newName) this.#nameCame(key)
    this.#added(key, print, held.bytes)
    try {
      await committed
    } catch (err) {
      if (newName) this.#nameWent(key)
      this.#removed(key, print, held.bytes)
      if (before) this.#added(key, before.print, before.bytes)
      throw err
    }
    return before
  }

  /** The members of one ring bucket (a key's first four hex digits), from the table. */
  *#bucket(bucket: number): Generator<FragmentRow & Member> {
    const { start, end } = bucketRange(bucket, bucket)
    for (const row of this.#rows.range(start, end)) yield { ...row, position: positionOf(row.key) }
  }

  /** The digest of each part of `arc`: what this peer holds there, in a few bytes per part. */
  digestsIn(arc: Arc, parts?: number): PartDigests {
    return this.#digests.parts(new ArcParts(arc, parts), (bucket) => this.#bucket(bucket))
  }

  /** The fragments held in the selected parts of `arc` (where a digest differed). */
  listIn(arc: Arc, selected: readonly number[], parts?: number): HeldFragment[] {
    const found = membersIn(new ArcParts(arc, parts), new Set(selected), (bucket) => this.#bucket(bucket))
    return [...found].map((member) => (member as FragmentRow & Member).held)
  }

  has(key: FragmentKey): boolean {
    return this.#rows.brief(keyOf(key)) !== undefined
  }

  /**
   * Every fragment held, read a page of rows at a time (a scrub of a
   * million fragments never holds them all); rows added or removed during
   * the walk may or may not be seen.
   */
  async *walk(pageRows = 512): AsyncGenerator<HeldFragment> {
    for (let after = ''; ; ) {
      const rows = this.#rows.page(after, pageRows)
      for (const row of rows) yield row.held
      if (rows.length < pageRows) return
      after = (rows.at(-1) as FragmentRow).key
    }
  }

  /** Every fragment held (a scan of the table). */
  list(): HeldFragment[] {
    return [...this.#rows.all()].map((row) => row.held)
  }

  stats(): StoreStats {
    const { names, fragments, bytes } = this.#digests.total
    return { files: names, fragments, bytes }
  }

  /** Starts receiving a fragment; nothing is visible until commit(). */
  async beginWrite(key: FragmentKey, coding: Coding): Promise<FragmentWriter> {
    if (this.draining) throw new HousePartyError('ERR_DRAINING', 'this peer is leaving the party')
    const tmp = join(this.#tmp, `${randomBytes(8).toString('hex')}.frag`)
    const handle = await open(tmp, 'w')
    return new FragmentWriter(this, key, coding, tmp, handle, this.#writes.enter(), this.#atRest?.sealer(keyOf(key)))
  }

  /** Resolves once no fragment is being received (or when `signal` aborts). */
  writesSettled(signal: AbortSignal): Promise<void> {
    return this.#writes.settled(signal)
  }

  /** Called by FragmentWriter.commit(): moves a verified fragment into place, then makes its row durable. */
  async install(manifest: Manifest, tmp: string, bytes: number, seal?: Buffer): Promise<HeldFragment> {
    const key = keyOf(manifest)
    const path = this.#pathOf(manifest)
    const dir = join(path, '..')
    this.#installing.add(key)
    try {
      if (this.#sweepingNow?.key === key) await this.#sweepingNow.done
      await mkdir(dir, { recursive: true })
      await rename(tmp, path)
      // The rename must be durable before the row that says the fragment is there.
      await syncDir(dir)
      const held = heldOf(manifest, bytes, this.#now())
      await this.#record(key, manifest, held, undefined, seal)
      return held
    } finally {
      this.#installing.delete(key)
    }
  }

  /**
   * Keeps a small fragment (at most one chunk) in its manifest row: checked
   * against its checksum and the sender's authenticated trailer, durable
   * once the row's commit is.
   */
  async stash(key: FragmentKey, coding: Coding, trailer: HoldTrailer, data: Buffer, checksum: Buffer | undefined): Promise<HeldFragment> {
    if (this.draining) throw new HousePartyError('ERR_DRAINING', 'this peer is leaving the party')
    const ended = this.#writes.enter()
    try {
      const stripes = stripeCount(trailer.size, coding)
      if (stripes > 1) throw new HousePartyError('ERR_PROTOCOL', `a ${trailer.size}-byte file has ${stripes} stripes: only one can be kept inline`)
      if (data.length !== chunkBytes(trailer.size, coding, 0))
        throw new HousePartyError('ERR_PROTOCOL', `fragment of ${data.length} bytes has the wrong length`)
      if (stripes === 1 && !(checksum && chunkChecksum(data).equals(checksum)))
        throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `fragment ${key.index} failed its checksum in transit`)
      const chunks = stripes === 1 && checksum ? [checksum.toString('hex')] : []
      if (fragmentDigest(chunks) !== trailer.digest) throw new HousePartyError('ERR_CHECKSUM_MISMATCH', 'fragment digest does not match the trailer')
      const { name, version, index } = key
      const manifest: Manifest = { name, version, index, size: trailer.size, hash: trailer.hash, created: trailer.created, coding, chunks }
      const held = heldOf(manifest, data.length, this.#now())
      const sealer = this.#atRest?.sealer(keyOf(key))
      const stored = sealer && stripes === 1 ? sealer.sealChunk(0, data) : data
      const before = await this.#record(keyOf(key), manifest, held, stored, sealer?.seal())
      if (before && !before.inline) await this.#unlinkFile(key)
      return held
    } finally {
      ended()
    }
  }

  async manifest(key: FragmentKey): Promise<Manifest | undefined> {
    return this.#rows.fragment(keyOf(key))?.manifest
  }

  /** A held fragment's key, row and manifest, or ERR_NOT_FOUND. */
  #held(key: FragmentKey): Held {
    const k = keyOf(key)
    const found = this.#rows.fragment(k)
    if (!found) throw new HousePartyError('ERR_NOT_FOUND', `no fragment ${key.index} of ${JSON.stringify(key.name)} version ${key.version} here`)
    return { k, ...found }
  }

  /**
   * Opens a fragment for reading from chunk `fromChunk` on, a chunk at a time (into `buffers` when given; the
   * stream's consumer gives each back). The file is opened now, so a drop that races with this read cannot cut it short.
   */
  async openRead(key: FragmentKey, fromChunk: number, buffers?: ChunkBuffers): Promise<{ manifest: Manifest; bytes: number; stream: Readable }> {
    const h = this.#held(key)
    const { k, row: entry, manifest } = h
    const start = Math.min(chunkOffset(manifest.coding, fromChunk), entry.held.bytes)
    if (entry.inline && !h.seal) {
      const data = this.#inlineData(k, key)
      return { manifest, bytes: data.length - Math.min(start, data.length), stream: Readable.from([data.subarray(start)]) }
    }
    // From the file, or from the row when sealed; a sealed chunk is opened as it is read.
    return { manifest, bytes: entry.held.bytes - start, stream: chunkStream(await this.#openBytes(key, h), manifest, fromChunk, buffers) }
  }

  /**
   * Opens a fragment for reading chunk by chunk (a get or a repair on the
   * peer that holds it). Chunks are read where they lie and checked against
   * the manifest, as a remote reader would check them.
   */
  async openChunks(key: FragmentKey): Promise<ChunkReader> {
    const h = this.#held(key)
    return new ChunkReader(h.manifest, await this.#openBytes(key, h))
  }

  /** A fragment's bytes (its row's, or its file opened now: a drop racing a read cannot cut it short), opened if sealed. */
  async #openBytes(key: FragmentKey, { k, row, manifest, seal }: Held): Promise<FragmentBytes> {
    const bytes = row.inline ? memoryBytes(this.#inlineData(k, key)) : fileBytes(await open(this.#pathOf(row.held), 'r'))
    return seal ? openedBytes(bytes, manifest, (this.#atRest as AtRestKey).opener(k, seal)) : bytes
  }

  #inlineData(k: string, key: FragmentKey): Buffer {
    const data = this.#rows.data(k)
    if (!data) throw new HousePartyError('ERR_NOT_FOUND', `fragment ${key.index} of ${JSON.stringify(key.name)} is gone from this peer's table`)
    return data
  }

  /**
   * Scrub: re-reads one fragment and checks every chunk against its manifest.
   * Returns false when the fragment is damaged (a bad chunk, a wrong length,
   * an unreadable manifest); `pace` is awaited before each chunk is read.
   */
  async verify(key: FragmentKey, pace?: (bytes: number) => Promise<void>): Promise<boolean> {
    const k = keyOf(key)
    const found = this.#rows.fragment(k)
    if (!found) return true
    const { row: entry, manifest } = found
    if (fragmentDigest(manifest.chunks) !== entry.held.digest) return false
    let bytes: FragmentBytes
    try {
      bytes = await this.#openBytes(key, { k, ...found })
    } catch (err) {
      // Dropped meanwhile: nothing to check.
      if ((err instanceof HousePartyError || (err as NodeJS.ErrnoException).code === 'ENOENT') && !this.#rows.brief(k)) return true
      return false
    }
    try {
      return await verifyChunks(bytes, manifest, entry.held.bytes, pace)
    } finally {
      await bytes.close()
    }
  }

  /** Deletes the fragments of one version (all indices, or one); with `storedBy`, only those stored no later than that. Returns how many. */
  async drop(name: string, version: Version, index?: number, storedBy?: number): Promise<number> {
    let dropped = 0
    const h = nameHash(name)
    // The rows of one name are one range of keys: sha256(name)/…
    const ofName = [...this.#rows.range(`${h}/`, `${h}0`)]
    const going = ofName.filter(
      (row) => row.held.version === version && (index === undefined || row.held.index === index) && (storedBy === undefined || row.held.stored <= storedBy),
    )
    // Counted with the first row's removal, before any wait: in the same commit as the rows that take the name away.
    let nameGoes = going.length > 0 && going.length === ofName.length
    for (const row of going) {
      this.#rows.delete(row.key)
      if (nameGoes) this.#nameWent(row.key)
      nameGoes = false
      this.#removed(row.key, row.print, row.held.bytes)
      if (!row.inline) await this.#unlinkFile(row.held)
      dropped++
    }
    return dropped
  }

  async #unlinkFile(key: FragmentKey): Promise<void> {
    const path = this.#pathOf(key)
    await unlink(path).catch(() => undefined)
    await rmdir(join(path, '..')).catch(() => undefined)
  }
}

export { nameHash } from './layout.ts'
