import { HousePartyError } from '../../shared/errors.ts'
import type { Throttle } from '../../shared/throttle.ts'
import { chunkChecksum, ErasureCoder, fragmentBytes, fragmentDigest, stripeCount } from '../codec/index.ts'
import type { FileRecord, FragmentRef, GuestId } from '../protocol/index.ts'
import { type FilesContext, keptWhole, openSinks } from './context.ts'
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
  try {
    sinks = await openSinks(ctx, { name: record.name, version: record.version, coding }, missing, exclude, {
      signal,
      fragmentBytes: fragmentBytes(record.size, coding),
      whole: keptWhole(record.size, coding, ctx.inlineBytes),
    })
    const digests = new Map<number, string[]>(missing.map((i) => [i, []]))
    const stripes = stripeCount(record.size, coding)
    for (let s = 0; s < stripes; s++) {
      const shards = await reader.shards(s)
      await throttle?.take((shards.find((x) => x)?.length ?? 0) * (coding.k + missing.length), signal)
      const all = coder.reconstruct(shards)
      await Promise.all(
        sinks.map((sink) => {
          const shard = all[sink.index] as Buffer
          const digest = chunkChecksum(shard)
          digests.get(sink.index)?.push(digest.toString('hex'))
          return sink.write(shard, digest)
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
    reader.close()
  }
}
