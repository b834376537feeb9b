import { createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { CHUNK_CHECKSUM_BYTES } from '../protocol/index.ts'

/**
 * How a file becomes fragments. Pure arithmetic, shared by writers, readers
 * and holders so that all three agree on every byte offset.
 *
 * The file is cut into stripes of `stripeBytes` (the last may be shorter).
 * Each stripe is split into k equal data shards, padded with zeros to a
 * multiple of 8 bytes so the coder works on aligned words; m parity shards
 * are computed from them. Fragment i is shard i of every stripe, one after
 * the other: a "chunk" per stripe, each with its own CRC-32.
 */
export interface StripeLayout {
  k: number
  m: number
  stripeBytes: number
}

export function stripeCount(size: number, layout: StripeLayout): number {
  return Math.ceil(size / layout.stripeBytes)
}

export function stripeLength(size: number, layout: StripeLayout, stripe: number): number {
  return Math.max(0, Math.min(layout.stripeBytes, size - stripe * layout.stripeBytes))
}

/** Bytes of one shard of a stripe of `stripeLen` bytes. */
export function shardBytes(stripeLen: number, k: number): number {
  return Math.ceil(Math.ceil(stripeLen / k) / 8) * 8
}

/** Bytes of chunk `stripe` in any fragment of a file of `size` bytes. */
export function chunkBytes(size: number, layout: StripeLayout, stripe: number): number {
  return shardBytes(stripeLength(size, layout, stripe), layout.k)
}

/** Where chunk `stripe` starts inside a fragment: every earlier stripe is full. */
export function chunkOffset(layout: StripeLayout, stripe: number): number {
  return stripe * shardBytes(layout.stripeBytes, layout.k)
}

export function fragmentBytes(size: number, layout: StripeLayout): number {
  const stripes = stripeCount(size, layout)
  if (stripes === 0) return 0
  return chunkOffset(layout, stripes - 1) + chunkBytes(size, layout, stripes - 1)
}

/**
 * The k data shards of one stripe. A full stripe whose shards need no
 * padding is split in place (no copy); otherwise the bytes are copied into
 * a zero-padded buffer.
 */
export function splitStripe(stripe: Buffer, k: number): Buffer[] {
  const shard = shardBytes(stripe.length, k)
  let source = stripe
  if (shard * k !== stripe.length || stripe.byteOffset % 8 !== 0) {
    source = Buffer.alloc(shard * k)
    stripe.copy(source)
  }
  return Array.from({ length: k }, (_, i) => source.subarray(i * shard, (i + 1) * shard))
}

/** The bytes of a stripe from its data shards, without the padding. */
export function joinStripe(shards: readonly Buffer[], stripeLen: number): Buffer[] {
  const out: Buffer[] = []
  let left = stripeLen
  for (const shard of shards) {
    if (left <= 0) break
    const take = Math.min(left, shard.length)
    out.push(take === shard.length ? shard : shard.subarray(0, take))
    left -= take
  }
  return out
}

/**
 * A chunk's checksum: CRC-32, big-endian. It guards against bit rot and
 * transfer damage (as crc32c does in Ceph's BlueStore), at three times the
 * speed of sha256 here; the file's sha256, checked on every read, is what
 * proves a whole file is the one that was put.
 */
export function chunkChecksum(data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(CHUNK_CHECKSUM_BYTES)
  out.writeUInt32BE(crc32(data), 0)
  return out
}

/** One digest over a fragment's chunk checksums: a tracker keeps it to pin the fragment's exact contents. */
export function fragmentDigest(chunks: readonly string[]): string {
  const h = createHash('sha256')
  for (const c of chunks) h.update(Buffer.from(c, 'hex'))
  return h.digest('hex')
}
