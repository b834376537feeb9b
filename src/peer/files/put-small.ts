import { createHash } from 'node:crypto'
import { chunkChecksum, ErasureCoder, fragmentDigest, shardBytes } from '../codec/index.ts'
import type { Coding, FileRecord, FragmentRef, GuestId, HoldTrailer, Version } from '../protocol/index.ts'
import { chooseHolders } from '../ring/index.ts'
import type { Held, Placed } from '../transfer/index.ts'
import type { FilesContext } from './context.ts'
import { floorOf, mayKeep, nextVersion, type PutOptions, type PutResult, recordVersion } from './versions.ts'

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
 *
 * The version is announced to the trackers while the fragments travel, not
 * before: a guest that is both a tracker and a holder gets both in one
 * request (see CallBatcher), and the put waits one round trip less. In the
 * rare case the trackers know a newer version of the name (a racing put,
 * or a coordinator whose clock is behind), the fragments just stored are
 * dropped and sent again under a version above it.
 */
export async function putWhole(ctx: FilesContext, name: string, data: Buffer, options: Pick<PutOptions, 'signal' | 'seal' | 'md5'> = {}): Promise<PutResult> {
  const { signal } = options
  const created = ctx.clock.now()
  const hash = createHash('sha256').update(data).digest('hex')
  const md5 = options.md5 ? createHash('md5').update(data).digest('hex') : undefined
  const meta = options.seal?.({ size: data.length, hash, ...(md5 === undefined ? {} : { md5 }) })
  const coded = codeWhole(data, ctx.coding)
  let version = nextVersion(ctx.clock.now())
  for (let attempt = 1; ; attempt++) {
    const placing = placeWhole(ctx, { name, version, created, hash, size: data.length }, coded, signal)
    // Settled below either way: a failed placement must not go unhandled while the intent is awaited.
    placing.catch(() => undefined)
    let floor: Version | undefined
    try {
      floor = floorOf(await ctx.trackers.intend(name, version, signal))
    } catch (err) {
      await placing.then((refs) => ctx.fragments.drop({ name, version }, refs)).catch(() => undefined)
      throw err
    }
    const fragments = await placing
    if (mayKeep(version, floor, attempt)) {
      const record: FileRecord = { name, version, revision: 0, deleted: false, size: data.length, hash, created, coding: ctx.coding, fragments }
      if (meta) record.meta = meta
      const { current } = await recordVersion(ctx, record, signal)
      return { name, version, size: data.length, hash, current }
    }
    void ctx.fragments.drop({ name, version }, fragments)
    version = nextVersion(ctx.clock.now(), floor)
  }
}

interface WholeFile {
  name: string
  version: Version
  created: number
  hash: string
  size: number
}

/** Stores the k+m coded fragments of one version on k+m guests; the refs of every one, in index order. */
async function placeWhole(
  ctx: FilesContext,
  file: WholeFile,
  coded: { shards: Buffer[]; checksums: (Buffer | undefined)[] },
  signal?: AbortSignal,
): Promise<FragmentRef[]> {
  const { k, m } = ctx.coding
  const { name, version } = file
  const bytes = coded.shards[0]?.length ?? 0
  const ranked = chooseHolders({
    candidates: ctx.roster.guests().map((g) => g.id),
    name,
    count: k + m,
    tolerate: m,
    share: bytes,
    load: ctx.load,
    domains: (id) => ctx.roster.domainsOf(id),
    // This peer's own fragment costs no call (while it holds no more than the average).
    prefer: ctx.roster.selfId,
  })
  const stash = (index: number, holder: GuestId): Promise<Held> => {
    const checksum = coded.checksums[index]
    const trailer: HoldTrailer = {
      size: file.size,
      hash: file.hash,
      created: file.created,
      digest: fragmentDigest(checksum ? [checksum.toString('hex')] : []),
    }
    return ctx.fragments.stash(holder, { name, version, index, coding: ctx.coding }, trailer, coded.shards[index] as Buffer, checksum, signal)
  }
  const refsOf = (placed: readonly Placed<Held>[]): FragmentRef[] => placed.map(({ index, holder, value }) => ({ index, holder, digest: value.digest }))
  const placed = await ctx.fragments.place(
    ranked,
    Array.from({ length: k + m }, (_, i) => i),
    stash,
    { signal, placed: (holder) => ctx.load.placed(holder, bytes), abandon: (stored) => ctx.fragments.drop({ name, version }, refsOf(stored)) },
  )
  return refsOf(placed).sort((a, b) => a.index - b.index)
}
