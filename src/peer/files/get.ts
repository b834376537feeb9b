import { createHash } from 'node:crypto'
import { HousePartyError, isHousePartyError } from '../../shared/errors.ts'
import { delay } from '../../shared/lifecycle.ts'
import { ErasureCoder, joinStripe, shardBytes, stripeCount, stripeLength } from '../codec/index.ts'
import { type FileRecord, MAX_BATCH_BYTES, partsOf } from '../protocol/index.ts'
import { type Brought, recycleFetchedChunk } from '../transfer/index.ts'
import type { FilesContext } from './context.ts'
import { type ByteRange, checkPart, type OpenedFile, type OpenPart, readParts, readPartsRange } from './parts.ts'
import { StripeReader } from './stripe-reader.ts'

export type { OpenedFile } from './parts.ts'

/** wheresMyPint: the file's current record, or ERR_FILE_NOT_FOUND. */
export async function locateFile(ctx: FilesContext, name: string, signal?: AbortSignal): Promise<FileRecord> {
  return existing(name, await ctx.trackers.where(name, signal))
}

function existing(name: string, record: FileRecord | undefined): FileRecord {
  if (!record || record.deleted) throw new HousePartyError('ERR_FILE_NOT_FOUND', `no file named ${JSON.stringify(name)}`)
  return record
}

/** How long a read keeps asking again when too few fragments answer: a holder restarting, or fragments moving. */
const REREAD_WINDOW_MS = 10_000

/**
 * wheresMyPint, then opens k fragments before returning, so a caller learns
 * "not found" or "not enough fragments" before it has promised a response.
 * When too few fragments answer, the record may be stale (a newer put, or
 * fragments handed off by a leaving peer: a higher revision) or a holder may
 * be between a restart and its re-admission (a rolling restart): it asks the
 * trackers again, at once if the record changed, else after a short pause,
 * for up to REREAD_WINDOW_MS, before failing.
 */
export async function openFile(ctx: FilesContext, name: string, signal?: AbortSignal, range?: ByteRange): Promise<OpenedFile> {
  const started = performance.now()
  // The trackers send the fragments of a small file they hold with their answers: most of the k it needs.
  const { record, brought } = await ctx.trackers
    .locate(name, broughtUpTo(ctx), signal)
    .then((found) => ({ ...found, record: existing(name, found.record) }))
    .catch((err: unknown) => {
      ctx.events.get((performance.now() - started) / 1000, 0, 'error')
      throw err
    })
  return openLocated(ctx, record, started, signal, range, brought)
}

/** The largest fragment a reader here takes whole (see wholeFragmentBytes): what a tracker may send with its answer. */
function broughtUpTo(ctx: FilesContext): number | undefined {
  return ctx.inlineBytes > 0 ? Math.min(shardBytes(ctx.inlineBytes, ctx.coding.k), MAX_BATCH_BYTES) : undefined
}

/**
 * Opens a record already looked up. With a `range`, only the stripes (or the
 * parts) that hold it are read: the bytes are checked chunk by chunk, but
 * not against the whole file's sha256, which needs every byte.
 */
export function openRecord(ctx: FilesContext, record: FileRecord, signal?: AbortSignal, range?: ByteRange): Promise<OpenedFile> {
  return openLocated(ctx, record, performance.now(), signal, range)
}

async function openLocated(
  ctx: FilesContext,
  located: FileRecord,
  started: number,
  signal?: AbortSignal,
  range?: ByteRange,
  brought: readonly Brought[] = [],
): Promise<OpenedFile> {
  let record = located
  if (record.parts) return openComposite(ctx, record, started, signal, range)
  for (let attempt = 0; ; attempt++) {
    // What the trackers brought is of the first record read: a record read again fetches its fragments.
    const reader = new StripeReader(ctx, record, { signal, brought: attempt === 0 ? brought : [] })
    try {
      const from = range ? Math.floor(range.first / record.coding.stripeBytes) : 0
      if (record.size > 0) await reader.open(from)
      if (range) return { record, body: counted(ctx, readRange(record, reader, range), started) }
      return { record, body: counted(ctx, readStripes(record, reader), started), recycle: recycleFetchedChunk }
    } catch (err) {
      reader.close()
      const next =
        isHousePartyError(err, 'ERR_NOT_ENOUGH_FRAGMENTS') && performance.now() - started < REREAD_WINDOW_MS
          ? await rereadRecord(ctx, record, attempt, signal)
          : undefined
      if (next) {
        record = next
        continue
      }
      ctx.events.get((performance.now() - started) / 1000, 0, 'error')
      throw err
    }
  }
}

/** Opens a part of a file made of parts (or a range of it), at the version the file names. */
export function partOpener(ctx: FilesContext): OpenPart {
  return async (part, signal, range) => checkPart(part, await openFile(ctx, part.name, signal, range))
}

/** A file made of parts, its first part opened before returning (so "not enough fragments" comes before an answer starts). */
async function openComposite(ctx: FilesContext, record: FileRecord, started: number, signal?: AbortSignal, range?: ByteRange): Promise<OpenedFile> {
  const openPart = partOpener(ctx)
  try {
    if (range) return { record, body: counted(ctx, readPartsRange(record, openPart, range, signal), started) }
    const [head] = partsOf(record)
    const first = head ? await openPart(head, signal) : undefined
    return { record, body: counted(ctx, readParts(record, openPart, first, signal), started) }
  } catch (err) {
    ctx.events.get((performance.now() - started) / 1000, 0, 'error')
    throw err
  }
}

/** A get's bytes, counted in the file events when it ends (a file made of parts counts once, its parts as gets of their own too). */
async function* counted(ctx: FilesContext, body: AsyncGenerator<Buffer>, started: number): AsyncGenerator<Buffer> {
  let sent = 0
  let outcome: 'ok' | 'error' = 'error'
  try {
    for await (const piece of body) {
      sent += piece.length
      yield piece
    }
    outcome = 'ok'
  } finally {
    ctx.events.get((performance.now() - started) / 1000, sent, outcome)
  }
}

/** The file's record asked again: at once if it changed, else after a pause that grows with each attempt. */
async function rereadRecord(ctx: FilesContext, seen: FileRecord, attempt: number, signal?: AbortSignal): Promise<FileRecord | undefined> {
  const fresh = await ctx.trackers.where(seen.name, signal).catch(() => undefined)
  if (!fresh || fresh.deleted) return undefined
  if (fresh.version !== seen.version || fresh.revision !== seen.revision) return fresh
  await delay(Math.min(250 * 2 ** attempt, 2_000), signal)
  return (await ctx.trackers.where(seen.name, signal).catch(() => undefined)) ?? fresh
}

/** A whole file's bytes, stripe by stripe. */
async function* readStripes(record: FileRecord, reader: StripeReader): AsyncGenerator<Buffer> {
  const { coding, size } = record
  const coder = new ErasureCoder(coding.k, coding.m)
  const hash = createHash('sha256')
  // The last piece is held back until the whole file matches its content hash: a reader
  // never receives every byte of a file that fails it (the response ends short instead).
  let held: Buffer | undefined
  // One stripe read ahead: the next stripe's chunks arrive (and decode) while this one is hashed and sent.
  let next: Promise<Buffer[]> | undefined
  try {
    const stripes = stripeCount(size, coding)
    next = stripes > 0 ? stripeData(record, reader, coder, 0) : undefined
    for (let s = 0; s < stripes; s++) {
      const pieces = await (next as Promise<Buffer[]>)
      next = s + 1 < stripes ? stripeData(record, reader, coder, s + 1) : undefined
      next?.catch(() => undefined)
      for (const piece of pieces) {
        hash.update(piece)
        if (held) yield held
        held = piece
      }
    }
    const actual = hash.digest('hex')
    if (actual !== record.hash) {
      throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `${JSON.stringify(record.name)} rebuilt to sha256 ${actual}, expected ${record.hash}`)
    }
    if (held) yield held
  } finally {
    // Closed before and after the read ahead settles: what it was waiting for fails fast, and a fragment it opened
    // meanwhile (a holder failed, another taken) is closed too.
    reader.close()
    await next?.catch(() => undefined)
    reader.close()
  }
}

/** The data bytes of stripe `s`, from k of its shards (decoded when a data shard is missing). */
async function stripeData(record: FileRecord, reader: StripeReader, coder: ErasureCoder, s: number): Promise<Buffer[]> {
  const { coding, size } = record
  let shards = await reader.shards(s)
  if (shards.slice(0, coding.k).some((x) => !x)) shards = coder.reconstruct(shards)
  return joinStripe(shards.slice(0, coding.k) as Buffer[], stripeLength(size, coding, s))
}

/** Bytes [first, last] of a file, from the stripes that hold them. */
async function* readRange(record: FileRecord, reader: StripeReader, range: ByteRange): AsyncGenerator<Buffer> {
  const { coding, size } = record
  const coder = new ErasureCoder(coding.k, coding.m)
  try {
    const last = Math.min(range.last, size - 1)
    for (let s = Math.floor(range.first / coding.stripeBytes); s * coding.stripeBytes <= last; s++) {
      let at = s * coding.stripeBytes
      for (const piece of await stripeData(record, reader, coder, s)) {
        const from = Math.max(range.first - at, 0)
        const to = Math.min(last + 1 - at, piece.length)
        at += piece.length
        if (to > from) yield from === 0 && to === piece.length ? piece : piece.subarray(from, to)
      }
    }
  } finally {
    reader.close()
  }
}
