import { type ArcParts, BUCKETS, PartDigests } from './arcs.ts'
import type { RingId } from './ring.ts'

/** What a bucket holds: the XOR of its fragments' fingerprints, how many, their bytes, and how many file names they are of. */
export interface BucketTotals {
  bucket: number
  xor: bigint
  count: number
  bytes: number
  names: number
}

/** A fragment as the census sees it: where it sits on the ring and its fingerprint. */
export interface Member {
  key: string
  position: RingId
  print: bigint
}

/**
 * Per-bucket digests of the fragments a holder keeps (the XOR of their
 * fingerprints, and how many), updated as they come and go, so that
 * answering "what do you hold in this arc?" as a digest costs one pass over
 * the arc's buckets, not over its fragments. The two end buckets of an arc,
 * which it covers in part, are read member by member from the store's
 * table: nothing per fragment is kept in memory.
 */
export class BucketDigests {
  readonly #xor = new BigUint64Array(BUCKETS)
  readonly #count = new Uint32Array(BUCKETS)
  readonly #bytes = new Float64Array(BUCKETS)
  readonly #names = new Uint32Array(BUCKETS)
  /** Sums over every bucket, kept as they change: what the holder reports on every pong and gauge. */
  #total = { fragments: 0, bytes: 0, names: 0 }

  get total(): { fragments: number; bytes: number; names: number } {
    return { ...this.#total }
  }

  add(bucket: number, print: bigint, bytes: number): void {
    this.#set({
      ...this.bucket(bucket),
      xor: (this.#xor[bucket] as bigint) ^ print,
      count: (this.#count[bucket] as number) + 1,
      bytes: (this.#bytes[bucket] as number) + bytes,
    })
  }

  remove(bucket: number, print: bigint, bytes: number): void {
    const count = Math.max(0, (this.#count[bucket] as number) - 1)
    this.#set({ ...this.bucket(bucket), xor: (this.#xor[bucket] as bigint) ^ print, count, bytes: Math.max(0, (this.#bytes[bucket] as number) - bytes) })
  }

  /** A fragment of a file name the bucket held none of came. (A name's fragments all fall in one bucket: it is the name's position.) */
  nameCame(bucket: number): void {
    this.#set({ ...this.bucket(bucket), names: (this.#names[bucket] as number) + 1 })
  }

  /** The last fragment of a file name in the bucket went. */
  nameWent(bucket: number): void {
    this.#set({ ...this.bucket(bucket), names: Math.max(0, (this.#names[bucket] as number) - 1) })
  }

  /** One bucket's totals, as the store keeps them on disk. */
  bucket(bucket: number): BucketTotals {
    const count = this.#count[bucket] as number
    return { bucket, xor: this.#xor[bucket] as bigint, count, bytes: this.#bytes[bucket] as number, names: this.#names[bucket] as number }
  }

  /** Sets one bucket's totals (read back from disk at start). */
  load(totals: BucketTotals): void {
    this.#set(totals)
  }

  #set(totals: BucketTotals): void {
    const { bucket } = totals
    this.#total.fragments += totals.count - (this.#count[bucket] as number)
    this.#total.bytes += totals.bytes - (this.#bytes[bucket] as number)
    this.#total.names += totals.names - (this.#names[bucket] as number)
    this.#xor[bucket] = totals.xor
    this.#count[bucket] = totals.count
    this.#bytes[bucket] = totals.bytes
    this.#names[bucket] = totals.names
  }

  /** Every bucket holding something. */
  *occupied(): Generator<BucketTotals> {
    for (let b = 0; b < BUCKETS; b++) if (this.#count[b]) yield this.bucket(b)
  }

  /** The digest of each part of the arc; `members` lists a bucket the arc covers only in part. */
  parts(parts: ArcParts, members: (bucket: number) => Iterable<Member>): PartDigests {
    const out = new PartDigests(parts.count)
    for (const { offset, bucket, whole } of parts.buckets()) {
      if (whole) {
        if (this.#count[bucket]) out.add(parts.partAt(offset), this.#xor[bucket] as bigint, this.#count[bucket])
        continue
      }
      for (const member of members(bucket)) {
        if (parts.offsetOf(member.position) === offset) out.add(parts.partAt(offset), member.print)
      }
    }
    return out
  }
}

/** The members in the selected parts of the arc; `members` lists one bucket. */
export function* membersIn(parts: ArcParts, selected: ReadonlySet<number>, members: (bucket: number) => Iterable<Member>): Generator<Member> {
  const seen = new Set<number>()
  for (const { offset, bucket } of parts.buckets()) {
    // Both ends of an arc may fall in one bucket: read it once, and let partOf place each member.
    if (!selected.has(parts.partAt(offset)) || seen.has(bucket)) continue
    seen.add(bucket)
    for (const member of members(bucket)) {
      const part = parts.partOf(member.position)
      if (part !== undefined && selected.has(part)) yield member
    }
  }
}
