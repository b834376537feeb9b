import { HousePartyError } from '../../shared/errors.ts'
import type { Throttle } from '../../shared/throttle.ts'
import { chunkChecksum, ErasureCoder, fragmentBytes, fragmentDigest, shardBytes, stripeCount } from '../codec/index.ts'
import type { FileRecord, FragmentRef, GuestId } from '../protocol/index.ts'
import { type FilesContext, keptWhole, openSinks } from './context.ts'
import { StripePool } from './stripe-pool.ts'
import { StripeReader } from './stripe-reader.ts'

/** Fragments rebuilt and stored: their references, and the bytes written. */
export interface Rebuilt {
  refs: FragmentRef[]
  bytes: number
}

/**
 * Rebuilds fragments `missing` of a file from k of the fragments listed in
 * `record`, and stores each on a guest that holds no fragment of the file
 * (holdMyPint). Returns the new fragment references and the bytes written;
 * the caller records them with the trackers (watchMyPint) and reports them
 * (kept or discarded) once it knows which.
 */
export async function rebuildFragments(
  ctx: FilesContext,
  record: FileRecord,
  missing: readonly number[],
  avoid: ReadonlySet<GuestId>,
  signal?: AbortSignal,
  throttle?: Throttle,
): Promise<Rebuilt> {
  if (missing.length === 0) return { refs: [], bytes: 0 }
  const { coding } = record
  const coder = new ErasureCoder(coding.k, coding.m)
  const reader = new StripeReader(ctx, record, { signal })
  const exclude = new Set<GuestId>([...avoid, ...record.fragments.map((f) => f.holder)])
  await reader.open()
  let sinks: Awaited<ReturnType<typeof openSinks>> = []
  let next: Promise<(Buffer | undefined)[]> | undefined
  try {
    sinks = await openSinks(ctx, { name: record.name, version: record.version, coding }, missing, exclude, {
      signal,
      fragmentBytes: fragmentBytes(record.size, coding),
      whole: keptWhole(record.size, coding, ctx.inlineBytes),
    })
    const digests = new Map<number, string[]>(missing.map((i) => [i, []]))
    const stripes = stripeCount(record.size, coding)
    // Room for every shard a decode can make (up to m data shards, then m parity); the size of a put's slot
    // unless m > k, so rebuilds and puts share one pool.
    const pool = StripePool.of(Math.max(coding.k + coding.m, 2 * coding.m) * shardBytes(coding.stripeBytes, coding.k))
    // One stripe read ahead: its chunks arrive while this one is decoded and sent.
    next = stripes > 0 ? reader.shards(0) : undefined
    for (let s = 0; s < stripes; s++) {
      const shards = await (next as Promise<(Buffer | undefined)[]>)
      next = s + 1 < stripes ? reader.shards(s + 1) : undefined
      next?.catch(() => undefined)
      await throttle?.take((shards.find((x) => x)?.length ?? 0) * (coding.k + missing.length), signal)
      // Decoded into a reused slot, given back once every sink has flushed its shard.
      const slot = pool.take()
      const all = coder.reconstruct(shards, carve(slot))
      let unflushed = sinks.length
      const flushed = (): void => {
        if (--unflushed === 0) pool.give(slot)
      }
      await Promise.all(
        sinks.map((sink) => {
          const shard = all[sink.index] as Buffer
          const digest = chunkChecksum(shard)
          digests.get(sink.index)?.push(digest.toString('hex'))
          return sink.write(shard, digest, flushed)
        }),
      )
      const failed = sinks.find((x) => x.failed)
      if (failed) throw failed.failure
    }
    const refs: FragmentRef[] = []
    let bytes = 0
    await Promise.all(
      sinks.map(async (sink) => {
        const digest = fragmentDigest(digests.get(sink.index) ?? [])
        const reply = await sink.finish({ size: record.size, hash: record.hash, created: record.created, digest })
        if (!reply) throw sink.failure ?? new HousePartyError('ERR_TRANSFER_FAILED', `rebuilt fragment ${sink.index} was not stored`)
        bytes += reply.bytes
        refs.push({ index: sink.index, holder: sink.holder as GuestId, digest })
      }),
    )
    return { refs: refs.sort((a, b) => a.index - b.index), bytes }
  } catch (err) {
    for (const sink of sinks) sink.fail(err)
    throw err
  } finally {
    // Closed before and after the read ahead settles, as a get's reader is.
    reader.close()
    await next?.catch(() => undefined)
    reader.close()
  }
}

/** An allocator that cuts buffers from `slot` in turn, and fresh ones once it is used up. */
function carve(slot: Buffer): (bytes: number) => Buffer {
  let used = 0
  return (bytes) => {
    if (used + bytes > slot.length) return Buffer.allocUnsafe(bytes)
    used += bytes
    return slot.subarray(used - bytes, used)
  }
}
