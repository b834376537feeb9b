import { createHash } from 'node:crypto'
import { HousePartyError, isHousePartyError } from '../../shared/errors.ts'
import { delay } from '../../shared/lifecycle.ts'
import { ErasureCoder, joinStripe, stripeCount, stripeLength } from '../codec/index.ts'
import { type FileRecord, partsOf } from '../protocol/index.ts'
import type { FilesContext } from './context.ts'
import { checkPart, type OpenedFile, type OpenPart, readParts } from './parts.ts'
import { StripeReader } from './stripe-reader.ts'

export type { OpenedFile } from './parts.ts'

/** wheresMyPint: the file's current record, or ERR_FILE_NOT_FOUND. */
export async function locateFile(ctx: FilesContext, name: string, signal?: AbortSignal): Promise<FileRecord> {
  const record = await ctx.trackers.where(name, signal)
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
export async function openFile(ctx: FilesContext, name: string, signal?: AbortSignal): Promise<OpenedFile> {
  const started = performance.now()
  let record = await locateFile(ctx, name, signal).catch((err: unknown) => {
    ctx.events.get((performance.now() - started) / 1000, 0, 'error')
    throw err
  })
  if (record.parts) return openComposite(ctx, record, started, signal)
  for (let attempt = 0; ; attempt++) {
    const reader = new StripeReader(ctx, record, { signal })
    try {
      if (record.size > 0) await reader.open()
      return { record, body: readStripes(ctx, record, reader, started) }
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

/** A file made of parts, its first part opened before returning (so "not enough fragments" comes before an answer starts). */
async function openComposite(ctx: FilesContext, record: FileRecord, started: number, signal?: AbortSignal): Promise<OpenedFile> {
  const openPart: OpenPart = async (part, s) => checkPart(part, await openFile(ctx, part.name, s))
  try {
    const [head] = partsOf(record)
    const first = head ? await openPart(head, signal) : undefined
    return { record, body: counted(ctx, readParts(record, openPart, first, signal), started) }
  } catch (err) {
    ctx.events.get((performance.now() - started) / 1000, 0, 'error')
    throw err
  }
}

/** A composite file's bytes, counted once as one get (its parts count as gets of their own too). */
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

async function* readStripes(ctx: FilesContext, record: FileRecord, reader: StripeReader, started: number): AsyncGenerator<Buffer> {
  const { coding, size } = record
  const coder = new ErasureCoder(coding.k, coding.m)
  const hash = createHash('sha256')
  let sent = 0
  let outcome: 'ok' | 'error' = 'error'
  // The last piece is held back until the whole file matches its content hash: a reader
  // never receives every byte of a file that fails it (the response ends short instead).
  let held: Buffer | undefined
  try {
    const stripes = stripeCount(size, coding)
    for (let s = 0; s < stripes; s++) {
      let shards = await reader.shards(s)
      if (shards.slice(0, coding.k).some((x) => !x)) shards = coder.reconstruct(shards)
      for (const piece of joinStripe(shards.slice(0, coding.k) as Buffer[], stripeLength(size, coding, s))) {
        hash.update(piece)
        if (held) {
          sent += held.length
          yield held
        }
        held = piece
      }
    }
    const actual = hash.digest('hex')
    if (actual !== record.hash) {
      throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `${JSON.stringify(record.name)} rebuilt to sha256 ${actual}, expected ${record.hash}`)
    }
    if (held) {
      sent += held.length
      yield held
    }
    outcome = 'ok'
  } finally {
    reader.close()
    ctx.events.get((performance.now() - started) / 1000, sent, outcome)
  }
}
