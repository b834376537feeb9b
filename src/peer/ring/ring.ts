import { hash, randomBytes } from 'node:crypto'

/**
 * The hash ring. Pure: ids and names in, ids out. Guest ids and name
 * positions are 64-bit numbers written as 16 lowercase hex digits, so string
 * comparison is numeric comparison.
 */
export type RingId = string

export function randomRingId(random: (n: number) => Buffer = randomBytes): RingId {
  return random(8).toString('hex')
}

/**
 * The first 64 bits of the SHA-256 of `text` (UTF-8), as 16 hex digits. One-shot `hash`, not a Hash object per
 * call: a pass over a chunk of records hashes each name several times, and the objects were most of its garbage.
 */
export function sha256Head(text: string): string {
  return hash('sha256', text, 'hex').slice(0, 16)
}

/** A name's position on the ring: the first 64 bits of its SHA-256. */
export function ringPosition(name: string): RingId {
  return sha256Head(name)
}

/** Picks a random id not already on the ring (the chance of a collision is 2^-64, but cheap to rule out). */
export function freshRingId(taken: Iterable<RingId>, random: (n: number) => Buffer = randomBytes): RingId {
  const used = new Set(taken)
  for (;;) {
    const id = randomRingId(random)
    if (!used.has(id)) return id
  }
}

/**
 * The `count` guests that follow `position` clockwise (the first at or after
 * it, wrapping around). These are a file's trackers: the primary first, then
 * its successors as replicas.
 */
export function successors(ids: readonly RingId[], position: RingId, count: number): RingId[] {
  const sorted = [...new Set(ids)].sort()
  if (sorted.length === 0 || count <= 0) return []
  let start = sorted.findIndex((id) => id >= position)
  if (start === -1) start = 0
  const out: RingId[] = []
  for (let i = 0; i < Math.min(count, sorted.length); i++) out.push(sorted[(start + i) % sorted.length] as RingId)
  return out
}

/**
 * Rendezvous (highest random weight) ranking of guests for a key: every
 * peer computes the same order from the same list, and a change of guests
 * only moves the keys whose top choices changed.
 */
export function rendezvousRank(ids: readonly RingId[], key: string): RingId[] {
  // Scores are 16 hex digits, so comparing them as strings compares them as numbers.
  const scored = [...new Set(ids)].map((id) => ({ id, score: sha256Head(`${key}\0${id}`) }))
  scored.sort((a, b) => (a.score === b.score ? (a.id < b.id ? -1 : 1) : a.score > b.score ? -1 : 1))
  return scored.map((s) => s.id)
}

/** One string per set of guests, whatever their order: two rings of the same guests have the same key. */
export function ringKey(ids: readonly RingId[]): string {
  return [...ids].sort().join(',')
}
