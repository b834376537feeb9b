import { createHash } from 'node:crypto'
import { chunkChecksum, ErasureCoder, fragmentDigest, shardBytes } from '../codec/index.ts'
import type { Coding, FileRecord, FragmentRef, GuestId, HoldTrailer } from '../protocol/index.ts'
import { chooseHolders } from '../ring/index.ts'
import type { Held, Placed } from '../transfer/index.ts'
import type { FilesContext } from './context.ts'
import { announce, type PutResult, recordVersion } from './versions.ts'

/** One coder per coding: building the matrices costs more than coding a few KiB. */
const coders = new Map<string, ErasureCoder>()

/** The k+m fragments of a file of at most one stripe, and each one's CRC-32 (none for an empty file). */
export function codeWhole(data: Buffer, coding: Coding): { shards: Buffer[]; checksums: (Buffer | undefined)[] } {
  const { k, m } = coding
  const shard = shardBytes(data.length, k)
  // A fresh zeroed buffer: the padding is zeros, and every shard starts on an 8-byte boundary as the coder wants.
  const slot = Buffer.alloc(shard * (k + m))
  data.copy(slot)
  const shards = Array.from({ length: k + m }, (_, i) => slot.subarray(i * shard, (i + 1) * shard))
  if (data.length === 0) return { shards, checksums: shards.map(() => undefined) }
  const id = `${k}+${m}`
  let coder = coders.get(id)
  if (!coder) {
    coder = new ErasureCoder(k, m)
    coders.set(id, coder)
  }
  coder.encodeInto(shards.slice(0, k), shards.slice(k))
  return { shards, checksums: shards.map((s) => chunkChecksum(s)) }
}

/**
 * A put of a small file, held whole in memory: coded on the event loop (a
 * worker's round trip costs more than coding a few KiB), each fragment sent
 * whole in one call on a kept connection and kept in its holder's manifest
 * table. A holder that fails is replaced by the next guest in line with the
 * same bytes (FragmentClient.place), so nothing is rebuilt; the record is
 * written once every fragment is durable, as for a streamed put.
 */
export async function putWhole(ctx: FilesContext, name: string, data: Buffer, signal?: AbortSignal): Promise<PutResult> {
  const { coding } = ctx
  const { k, m } = coding
  const version = await announce(ctx, name, signal)
  const created = ctx.clock.now()
  const hash = createHash('sha256').update(data).digest('hex')
  const { shards, checksums } = codeWhole(data, coding)
  const bytes = shards[0]?.length ?? 0
  const ranked = chooseHolders(
    ctx.roster.guests().map((g) => g.id),
    name,
    k + m,
    bytes,
    ctx.load,
  )
  const stash = (index: number, holder: GuestId): Promise<Held> => {
    const checksum = checksums[index]
    const trailer: HoldTrailer = { size: data.length, hash, created, digest: fragmentDigest(checksum ? [checksum.toString('hex')] : []) }
    return ctx.fragments.stash(holder, { name, version, index, coding }, trailer, shards[index] as Buffer, checksum, signal)
  }
  const refsOf = (placed: readonly Placed<Held>[]): FragmentRef[] => placed.map(({ index, holder, value }) => ({ index, holder, digest: value.digest }))
  const placed = await ctx.fragments.place(
    ranked,
    Array.from({ length: k + m }, (_, i) => i),
    stash,
    { signal, placed: (holder) => ctx.load.placed(holder, bytes), abandon: (stored) => ctx.fragments.drop({ name, version }, refsOf(stored)) },
  )
  const record: FileRecord = { name, version, revision: 0, deleted: false, size: data.length, hash, created, coding, fragments: refsOf(placed) }
  const { current } = await recordVersion(ctx, record, signal)
  return { name, version, size: data.length, hash, current }
}
