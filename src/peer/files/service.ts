import { HousePartyError } from '../../shared/errors.ts'
import {
  checkName,
  type FileRecord,
  type GuestId,
  type HeldFragment,
  type ListedRecord,
  type ObjectMeta,
  type PartRef,
  type Version,
} from '../protocol/index.ts'
import { decodeToken, encodeToken, listedOf, type PageQuery } from '../tracker/index.ts'
import type { FilesContext } from './context.ts'
import { locateFile, type OpenedFile, openFile, openRecord, partOpener } from './get.ts'
import { type ByteRange, composeFile } from './parts.ts'
import { type PutOptions, putFile } from './put.ts'
import { type PutResult, writeTombstone } from './versions.ts'

/** 'parts': a file made of parts (an S3 multipart upload), whose health is that of its part files. */
export type FileHealth = 'ok' | 'degraded' | 'lost' | 'parts'

export interface FileSummary {
  name: string
  version: Version
  size: number
  hash: string
  created: number
  k: number
  m: number
  health: FileHealth
  holders: { index: number; guest: GuestId; live: boolean }[]
  /** The S3 ETag (MD5 of the body, or of a multipart upload's parts), for a file put through S3. */
  etag?: string
}

/** A listing request: `token` (a page's `next`) continues a listing, and wins over `after` (start after this name). */
export interface ListRequest {
  prefix: string
  delimiter: string
  after: string
  token: string
  limit: number
}

export interface FilePage {
  files: FileSummary[]
  prefixes: string[]
  truncated: boolean
  /** The continuation token of the next page, when truncated. */
  next: string | undefined
  guests: number
  answered: number
}

/** ok: every fragment's holder is a guest; degraded: at least k are; lost: fewer than k. */
export function healthOf(record: ListedRecord, isGuest: (id: GuestId) => boolean): FileHealth {
  // A file made of parts holds no fragment itself: its health is its parts' (each listed and repaired as a file).
  if (record.parts !== undefined) return 'parts'
  const live = new Set(record.holders.filter(([, holder]) => isGuest(holder)).map(([index]) => index)).size
  if (live >= record.k + record.m) return 'ok'
  return live >= record.k ? 'degraded' : 'lost'
}

/** The file operations behind the HTTP API and the CLI: any peer can serve any file. */
export class FileService {
  readonly #ctx: FilesContext

  constructor(ctx: FilesContext) {
    this.#ctx = ctx
  }

  get context(): FilesContext {
    return this.#ctx
  }

  put(name: string, body: AsyncIterable<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    checkName(name)
    return putFile(this.#ctx, name, body, options)
  }

  open(name: string, signal?: AbortSignal): Promise<OpenedFile> {
    checkName(name)
    return openFile(this.#ctx, name, signal)
  }

  /** Opens a record looked up before (record()), whole or only bytes `range` of it (read from the stripes or parts that hold them). */
  openRecord(record: FileRecord, signal?: AbortSignal, range?: ByteRange): Promise<OpenedFile> {
    return openRecord(this.#ctx, record, signal, range)
  }

  /** The file's current record (its fragments and what it carries beside its bytes), or ERR_FILE_NOT_FOUND. */
  record(name: string, signal?: AbortSignal): Promise<FileRecord> {
    checkName(name)
    return locateFile(this.#ctx, name, signal)
  }

  /** Records `name` as made of `parts` (existing files, at the versions given), with what it carries beside its bytes. */
  compose(name: string, parts: PartRef[], meta: ObjectMeta, signal?: AbortSignal): Promise<PutResult> {
    checkName(name)
    return composeFile(this.#ctx, name, parts, meta, partOpener(this.#ctx), signal)
  }

  /** Puts a small file held in memory (the S3 API's buckets, keys and uploads). */
  putBytes(name: string, content: Buffer, signal?: AbortSignal): Promise<PutResult> {
    return this.put(name, once(content), { signal, sizeHint: content.length })
  }

  /** A small file's bytes, read whole (and checked against its sha256). */
  async readBytes(name: string, signal?: AbortSignal): Promise<Buffer> {
    const pieces: Buffer[] = []
    for await (const piece of (await this.open(name, signal)).body) pieces.push(piece)
    return Buffer.concat(pieces)
  }

  async stat(name: string, signal?: AbortSignal): Promise<FileSummary> {
    checkName(name)
    return this.#summarise(listedOf(await locateFile(this.#ctx, name, signal)))
  }

  /** Writes a tombstone (a newer, deleted version) to the trackers, then deletes the fragments (or the parts). */
  async remove(name: string, signal?: AbortSignal): Promise<{ name: string; version: Version }> {
    checkName(name)
    const record = await locateFile(this.#ctx, name, signal)
    return { name, version: await writeTombstone(this.#ctx, record, signal) }
  }

  /** One page of the party's files in name order, with the common prefixes under `delimiter` (see tracker/listing.ts). */
  async page(request: ListRequest, signal?: AbortSignal): Promise<FilePage> {
    const { token, ...rest } = request
    const query: PageQuery = { ...rest, ...(token ? decodeToken(token) : { after: request.after, skip: false }) }
    if (query.prefix !== '' && !query.prefix.isWellFormed()) throw new HousePartyError('ERR_INVALID_ARGUMENT', 'the prefix is not well-formed Unicode')
    const page = await this.#ctx.trackers.listPage(query, signal)
    return {
      files: page.records.map((r) => this.#summarise(r)),
      prefixes: page.prefixes,
      truncated: page.truncated,
      next: page.next && encodeToken(page.next),
      guests: page.asked,
      answered: page.answered,
    }
  }

  /** What one guest holds (the seed's "view peer contents"). */
  fragmentsOf(id: GuestId, signal?: AbortSignal): Promise<HeldFragment[]> {
    return this.#ctx.fragments.inventory(id, signal)
  }

  #summarise(record: ListedRecord): FileSummary {
    const isGuest = (id: GuestId): boolean => this.#ctx.roster.addressOf(id) !== undefined
    return {
      name: record.name,
      version: record.version,
      size: record.size,
      hash: record.hash,
      created: record.created,
      k: record.k,
      m: record.m,
      health: healthOf(record, isGuest),
      holders: record.holders.map(([index, guest]) => ({ index, guest, live: isGuest(guest) })),
      ...(record.etag === undefined ? {} : { etag: record.etag }),
    }
  }
}

async function* once(content: Buffer): AsyncGenerator<Buffer> {
  yield content
}
