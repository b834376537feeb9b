import { createHash } from 'node:crypto'
import { HousePartyError, isHousePartyError } from '../../shared/errors.ts'
import { ErasureCoder, joinStripe, stripeCount, stripeLength } from '../codec/index.ts'
import type { FileRecord } from '../protocol/index.ts'
import type { FilesContext } from './context.ts'
import { StripeReader } from './stripe-reader.ts'

export interface OpenedFile {
  record: FileRecord
  /** The file's bytes; throws mid-stream if they cannot be served or fail the content hash. */
  body: AsyncGenerator<Buffer>
}

/** wheresMyPint: the file's current record, or ERR_FILE_NOT_FOUND. */
export async function locateFile(ctx: FilesContext, name: string, signal?: AbortSignal): Promise<FileRecord> {
  const record = await ctx.trackers.where(name, signal)
  if (!record || record.deleted) throw new HousePartyError('ERR_FILE_NOT_FOUND', `no file named ${JSON.stringify(name)}`)
  return record
}

/**
 * wheresMyPint, then opens k fragments before returning, so a caller learns
 * "not found" or "not enough fragments" before it has promised a response.
 * If the fragments of the version it found are gone (a newer put replaced it
 * between the two steps), it asks the trackers once more.
 */
export async function openFile(ctx: FilesContext, name: string, signal?: AbortSignal): Promise<OpenedFile> {
  const started = performance.now()
  for (let attempt = 0; ; attempt++) {
    const record = await locateFile(ctx, name, signal)
    const reader = new StripeReader(ctx, record, { signal })
    try {
      if (record.size > 0) await reader.open()
      return { record, body: readStripes(ctx, record, reader, started) }
    } catch (err) {
      reader.close()
      if (attempt === 0 && isHousePartyError(err, 'ERR_NOT_ENOUGH_FRAGMENTS')) {
        const again = await ctx.trackers.where(name, signal)
        if (again && again.version !== record.version) continue
      }
      ctx.events.get((performance.now() - started) / 1000, 0, 'error')
      throw err
    }
  }
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
