import { createHash } from 'node:crypto'
import { HousePartyError } from '../../shared/errors.ts'
import { chunkChecksum, ErasureCoder, fragmentDigest, shardBytes } from '../codec/index.ts'
import type { Coding, FileRecord, FragmentRef, GuestId, HoldTrailer } from '../protocol/index.ts'
import { chooseHolders } from '../ring/index.ts'
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
 * same bytes, so nothing is rebuilt; the record is written once every
 * fragment is durable, as for a streamed put.
 */
export async function putWhole(ctx: FilesContext, name: string, data: Buffer, signal?: AbortSignal): Promise<PutResult> {
  const { coding } = ctx
  const { k, m } = coding
  const version = await announce(ctx, name, signal)
  const created = ctx.clock.now()
  const hash = createHash('sha256').update(data).digest('hex')
  const { shards, checksums } = codeWhole(data, coding)
  const bytes = shards[0]?.length ?? 0
  const eligible = ctx.roster.guests().map((g) => g.id)
  const ranked = chooseHolders(eligible, name, k + m, bytes, ctx.load)
  const fragments: FragmentRef[] = []
  const failures: string[] = []
  let wanted = Array.from({ length: k + m }, (_, i) => i)
  let next = 0
  while (wanted.length > 0 && next < ranked.length) {
    const round = wanted.slice(0, ranked.length - next).map((index) => ({ index, holder: ranked[next++] as GuestId }))
    wanted = wanted.slice(round.length)
    const stored = await Promise.allSettled(
      round.map(({ index, holder }) => {
        const checksum = checksums[index]
        const trailer: HoldTrailer = { size: data.length, hash, created, digest: fragmentDigest(checksum ? [checksum.toString('hex')] : []) }
        return ctx.fragments.stash(holder, { name, version, index, coding }, trailer, shards[index] as Buffer, checksum, signal)
      }),
    )
    stored.forEach((result, i) => {
      const { index, holder } = round[i] as { index: number; holder: GuestId }
      if (result.status === 'fulfilled') {
        fragments.push({ index, holder, digest: result.value.digest })
        ctx.load.placed(holder, bytes)
      } else {
        failures.push(`${holder}: ${(result.reason as Error).message}`)
        ctx.log.warn({ holder, index, err: (result.reason as Error).message }, 'guest cannot take a fragment; trying the next')
        wanted.push(index)
      }
    })
    signal?.throwIfAborted()
  }
  const record: FileRecord = { name, version, revision: 0, deleted: false, size: data.length, hash, created, coding, fragments }
  if (wanted.length > 0) {
    await ctx.fragments.drop(record, fragments)
    throw new HousePartyError(
      'ERR_NOT_ENOUGH_PEERS',
      `${k + m} fragments need ${k + m} distinct guests; only ${fragments.length} of the ${ranked.length} eligible could take one${failures.length ? ` (${failures.slice(0, 3).join('; ')})` : ''}`,
      { details: { needed: k + m, reachable: fragments.length, guests: eligible.length } },
    )
  }
  fragments.sort((a, b) => a.index - b.index)
  const { current } = await recordVersion(ctx, record, signal)
  return { name, version, size: data.length, hash, current }
}
