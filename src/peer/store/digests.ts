import { type ArcParts, BUCKETS, bucketOf, PartDigests, type RingId } from '../ring/index.ts'

interface Member {
  position: RingId
  print: bigint
}

/**
 * Per-bucket digests of the fragments a holder keeps, updated as they come
 * and go, so that answering "what do you hold in this arc?" as a digest costs
 * one pass over the arc's buckets, not over its fragments. Only the two end
 * buckets of an arc, which it covers in part, are read entry by entry.
 */
export class BucketDigests {
  readonly #xor = new BigUint64Array(BUCKETS)
  readonly #count = new Uint32Array(BUCKETS)
  readonly #members = new Map<number, Map<string, Member>>()

  add(key: string, position: RingId, print: bigint): void {
    const bucket = bucketOf(position)
    if (this.#members.get(bucket)?.has(key)) this.remove(key, position)
    let members = this.#members.get(bucket)
    if (!members) {
      members = new Map()
      this.#members.set(bucket, members)
    }
    members.set(key, { position, print })
    this.#xor[bucket] = (this.#xor[bucket] as bigint) ^ print
    this.#count[bucket] = (this.#count[bucket] as number) + 1
  }

  remove(key: string, position: RingId): void {
    const bucket = bucketOf(position)
    const members = this.#members.get(bucket)
    const member = members?.get(key)
    if (!members || !member) return
    members.delete(key)
    if (members.size === 0) this.#members.delete(bucket)
    this.#xor[bucket] = (this.#xor[bucket] as bigint) ^ member.print
    this.#count[bucket] = (this.#count[bucket] as number) - 1
  }

  /** The digest of each part of the arc. */
  parts(parts: ArcParts): PartDigests {
    const out = new PartDigests(parts.count)
    for (const { offset, bucket, whole } of parts.buckets()) {
      if (whole) {
        if (this.#count[bucket]) out.add(parts.partAt(offset), this.#xor[bucket] as bigint, this.#count[bucket])
        continue
      }
      for (const member of this.#members.get(bucket)?.values() ?? []) {
        if (parts.offsetOf(member.position) === offset) out.add(parts.partAt(offset), member.print)
      }
    }
    return out
  }

  /** The keys of the fragments in the selected parts of the arc. */
  keysIn(parts: ArcParts, selected: ReadonlySet<number>): string[] {
    const keys: string[] = []
    const seen = new Set<number>()
    for (const { offset, bucket } of parts.buckets()) {
      // Both ends of an arc may fall in one bucket: read it once, and let partOf place each entry.
      if (!selected.has(parts.partAt(offset)) || seen.has(bucket)) continue
      seen.add(bucket)
      for (const [key, member] of this.#members.get(bucket) ?? []) {
        const part = parts.partOf(member.position)
        if (part !== undefined && selected.has(part)) keys.push(key)
      }
    }
    return keys
  }
}
