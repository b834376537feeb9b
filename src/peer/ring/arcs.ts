import { type RingId, sha256Head } from './ring.ts'

/**
 * Arcs of the ring and digests over them: how two guests check that they
 * agree on the fragments of a range of names without listing them.
 *
 * The ring is cut into 2^16 buckets by the first 16 bits of a position. A
 * holder keeps, per bucket, the XOR of its fragments' fingerprints and their
 * count, up to date as fragments come and go; a tracker computes the same
 * from its records. An arc is split into at most `parts` runs of whole
 * buckets (its two end buckets only partly), so comparing an arc costs one
 * short string per part, whatever the number of files in it.
 */

/** Ring positions p with from < p ≤ to, clockwise; from === to is the whole ring (a party of one). */
export interface Arc {
  from: RingId
  to: RingId
}

export const BUCKET_BITS = 16
export const BUCKETS = 1 << BUCKET_BITS
/** Parts an arc is compared in: a mismatch costs the entries of one part, a comparison one digest per part. */
export const DIGEST_PARTS = 256

export function bucketOf(position: RingId): number {
  return Number.parseInt(position.slice(0, BUCKET_BITS / 4), 16)
}

/**
 * The hex strings that start with the positions of buckets `from` to `to` (inclusive) lie in
 * `start` ≤ s < `end`: a position, or a key that begins with one, in an index ordered as text.
 */
export function bucketRange(from: number, to: number): { start: string; end: string } {
  const hex = (bucket: number): string => bucket.toString(16).padStart(BUCKET_BITS / 4, '0')
  // 'g' sorts after every hex digit: the last bucket runs to the end of the ring.
  return { start: hex(from), end: to + 1 < BUCKETS ? hex(to + 1) : 'g' }
}

export function inArc(position: RingId, arc: Arc): boolean {
  if (arc.from === arc.to) return true
  return arc.from < arc.to ? position > arc.from && position <= arc.to : position > arc.from || position <= arc.to
}

/** The positions `self` is primary tracker of: after its predecessor on the ring, up to itself. */
export function primaryArc(ids: readonly RingId[], self: RingId): Arc {
  const sorted = [...new Set([...ids, self])].sort()
  const at = sorted.indexOf(self)
  return { from: sorted[(at - 1 + sorted.length) % sorted.length] as RingId, to: self }
}

/**
 * The arc of the names `self` is one of the `replicas` trackers of: from its
 * `replicas`-th predecessor (exclusive) to itself. The whole ring when the
 * party has no more guests than that.
 */
export function trackedArc(ids: readonly RingId[], self: RingId, replicas: number): Arc {
  const sorted = [...new Set([...ids, self])].sort()
  if (sorted.length <= replicas) return { from: self, to: self }
  const at = sorted.indexOf(self)
  return { from: sorted[(at - replicas + sorted.length) % sorted.length] as RingId, to: self }
}

/** The fingerprint of one fragment copy: its identity and exact contents, 64 bits. */
export function fingerprint(name: string, version: string, index: number, digest: string): bigint {
  return BigInt(`0x${sha256Head(`${name}\u0000${version}\u0000${index}\u0000${digest}`)}`)
}

/** The fingerprint of one tracker record: its name and what decides which of two replicas is newer, 64 bits. */
export function recordFingerprint(name: string, version: string, revision: number, deleted: boolean): bigint {
  return BigInt(`0x${sha256Head(`${name}\u0000${version}\u0000${revision}\u0000${deleted ? 'deleted' : 'live'}`)}`)
}

/** One bucket of an arc: where it is in the arc's run of buckets, and whether the arc covers it whole. */
export interface ArcBucket {
  offset: number
  bucket: number
  whole: boolean
}

/** How an arc is split into parts: the same on both sides of a comparison, from the arc alone. */
export class ArcParts {
  readonly arc: Arc
  readonly count: number
  readonly #start: number
  /** Buckets the arc touches; one more than BUCKETS when both its ends fall in the same bucket, the long way round. */
  readonly #span: number

  constructor(arc: Arc, parts = DIGEST_PARTS) {
    this.arc = arc
    if (arc.from === arc.to) {
      this.#start = 0
      this.#span = BUCKETS
    } else {
      this.#start = bucketOf(arc.from)
      const end = (bucketOf(arc.to) - this.#start + BUCKETS) % BUCKETS
      this.#span = end === 0 && arc.to < arc.from ? BUCKETS + 1 : end + 1
    }
    this.count = Math.max(1, Math.min(parts, this.#span))
  }

  /** The offset of the bucket holding `position` in the arc's run of buckets, or undefined outside the arc. */
  offsetOf(position: RingId): number | undefined {
    if (!inArc(position, this.arc)) return undefined
    const offset = (bucketOf(position) - this.#start + BUCKETS) % BUCKETS
    return offset === 0 && this.#span > BUCKETS && position <= this.arc.to ? BUCKETS : offset
  }

  /** The part holding `position`, or undefined outside the arc. */
  partOf(position: RingId): number | undefined {
    const offset = this.offsetOf(position)
    return offset === undefined ? undefined : this.partAt(offset)
  }

  /** The part a bucket offset falls in. */
  partAt(offset: number): number {
    return Math.floor((offset * this.count) / this.#span)
  }

  /** Every bucket the arc touches, in order; the end buckets are not whole unless the arc is the whole ring. */
  *buckets(): Generator<ArcBucket> {
    const whole = this.arc.from === this.arc.to
    for (let offset = 0; offset < this.#span; offset++) {
      yield { offset, bucket: (this.#start + offset) % BUCKETS, whole: whole || (offset !== 0 && offset !== this.#span - 1) }
    }
  }
}

/** XOR and count of fingerprints per part: what a holder answers, and what a tracker expects of it. */
export class PartDigests {
  readonly xor: BigUint64Array
  readonly count: Uint32Array

  constructor(parts: number) {
    this.xor = new BigUint64Array(parts)
    this.count = new Uint32Array(parts)
  }

  add(part: number, print: bigint, count = 1): void {
    this.xor[part] = (this.xor[part] as bigint) ^ print
    this.count[part] = (this.count[part] as number) + count
  }

  copy(): PartDigests {
    const out = new PartDigests(this.xor.length)
    out.xor.set(this.xor)
    out.count.set(this.count)
    return out
  }

  /** One string per part, as sent on the wire. */
  encode(): string[] {
    return [...this.xor].map((x, i) => `${x.toString(16).padStart(16, '0')}.${this.count[i]}`)
  }
}

/** The parts where two encoded digests differ (a missing answer differs everywhere). */
export function differingParts(expected: readonly string[], answered: readonly string[]): number[] {
  const out: number[] = []
  for (let i = 0; i < expected.length; i++) if (expected[i] !== answered[i]) out.push(i)
  return out
}
