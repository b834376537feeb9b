import { createHash } from 'node:crypto'
import { HousePartyError } from '../../shared/errors.ts'
import { type FileRecord, type ObjectMeta, type PartRef, partList, partsOf } from '../protocol/index.ts'
import type { FilesContext } from './context.ts'
import { announce, type PutResult, recordVersion } from './versions.ts'

export interface OpenedFile {
  record: FileRecord
  /** The file's bytes; throws mid-stream if they cannot be served or fail the content hash. */
  body: AsyncGenerator<Buffer>
  /**
   * Takes back a piece of `body` once its reader is done with it (the answer has sent it), for the next read
   * to reuse. Optional: a piece never given back is left to the garbage collector.
   */
  recycle?: (piece: Buffer) => void
}

/** Bytes `first` to `last` of a file, both included. */
export interface ByteRange {
  first: number
  last: number
}

/** Opens one part (or a range of it) at the version the file names: a part replaced or removed since is an error, never other bytes. */
export type OpenPart = (part: PartRef, signal?: AbortSignal, range?: ByteRange) => Promise<OpenedFile>

/**
 * The bytes of a file made of parts: each part read in turn (each checked
 * against its own sha256 as it is read), and the whole against the file's.
 * As for a plain file, the last piece is held back until the whole matches.
 */
export async function* readParts(record: FileRecord, openPart: OpenPart, first: OpenedFile | undefined, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const parts = partsOf(record)
  const hash = createHash('sha256')
  let held: Buffer | undefined
  let opened = first
  try {
    for (const [i, part] of parts.entries()) {
      opened ??= await openPart(part, signal)
      for await (const piece of opened.body) {
        hash.update(piece)
        if (held) yield held
        held = piece
      }
      opened = undefined
      if (i === parts.length - 1 && record.hash !== '') {
        const actual = hash.digest('hex')
        if (actual !== record.hash)
          throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `${JSON.stringify(record.name)} read to sha256 ${actual}, expected ${record.hash}`)
      }
    }
    if (held) yield held
  } finally {
    await opened?.body.return(undefined)
  }
}

/** Bytes [first, last] of a file made of parts: only the parts that hold them are opened, each for its share. */
export async function* readPartsRange(record: FileRecord, openPart: OpenPart, range: ByteRange, signal?: AbortSignal): AsyncGenerator<Buffer> {
  let start = 0
  for (const part of partsOf(record)) {
    const end = start + part.size - 1
    const here = start
    start += part.size
    if (part.size === 0 || end < range.first) continue
    if (here > range.last) return
    const opened = await openPart(part, signal, { first: Math.max(range.first, here) - here, last: Math.min(range.last, end) - here })
    yield* opened.body
  }
}

/** Checks that an opened part is the version the file names. */
export function checkPart(part: PartRef, opened: OpenedFile): OpenedFile {
  if (opened.record.version !== part.version || opened.record.size !== part.size) {
    void opened.body.return(undefined)
    throw new HousePartyError(
      'ERR_NOT_ENOUGH_FRAGMENTS',
      `part ${JSON.stringify(part.name)} was replaced (version ${opened.record.version}, expected ${part.version})`,
    )
  }
  return opened
}

/**
 * Records `name` as a file made of `parts` (an S3 CompleteMultipartUpload):
 * no byte is copied. The parts are read once, in order, for the sha256 of
 * the whole (what the native API and the CLI verify a file by); the record
 * is written once that is known.
 */
export async function composeFile(
  ctx: FilesContext,
  name: string,
  parts: PartRef[],
  meta: ObjectMeta,
  openPart: OpenPart,
  signal?: AbortSignal,
): Promise<PutResult> {
  if (parts.length === 0) throw new HousePartyError('ERR_INVALID_ARGUMENT', 'a file made of parts needs at least one part')
  const size = parts.reduce((n, p) => n + p.size, 0)
  const probe: FileRecord = {
    name,
    version: parts[0]?.version as string,
    revision: 0,
    deleted: false,
    size,
    hash: '',
    created: 0,
    coding: ctx.coding,
    fragments: [],
    parts: partList(parts),
  }
  const hash = createHash('sha256')
  for await (const piece of readParts(probe, openPart, undefined, signal)) hash.update(piece)
  const version = await announce(ctx, name, signal)
  const record: FileRecord = { ...probe, version, hash: hash.digest('hex'), created: ctx.clock.now(), meta }
  const { current } = await recordVersion(ctx, record, signal)
  return { name, version, size, hash: record.hash, current }
}
