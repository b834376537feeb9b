import { sharedSlot } from '../codec/index.ts'

/**
 * Reusable stripe buffers for a put, in memory shared with the coding worker. Each slot holds one stripe's k data
 * shards followed by its m parity shards. A stripe stays in use until every
 * socket has flushed its shards; reusing the slots afterwards spares the
 * garbage collector gigabytes of short-lived buffers on a large put.
 */
export class StripePool {
  static readonly #bySize = new Map<number, StripePool>()

  /** The process's pool for slots of `slotBytes`: puts share it, so a put does not start by allocating fresh shared memory. */
  static of(slotBytes: number): StripePool {
    let pool = StripePool.#bySize.get(slotBytes)
    if (!pool) {
      pool = new StripePool(slotBytes)
      StripePool.#bySize.set(slotBytes, pool)
    }
    return pool
  }

  readonly #free: Buffer[] = []
  readonly #slotBytes: number
  readonly #keep: number

  constructor(slotBytes: number, keep = 24) {
    this.#slotBytes = slotBytes
    this.#keep = keep
  }

  take(): Buffer {
    return this.#free.pop() ?? sharedSlot(this.#slotBytes)
  }

  give(slot: Buffer): void {
    if (this.#free.length < this.#keep) this.#free.push(slot)
  }
}

/** A stripe read from the body: its bytes are `slot[0, length)`. */
export interface FilledStripe {
  slot: Buffer
  length: number
}

/** Cuts a byte stream into stripes of exactly `stripeBytes` (the last may be shorter), each in a slot from `take`. */
export async function* stripesOf(body: AsyncIterable<Uint8Array>, stripeBytes: number, take: () => Buffer): AsyncGenerator<FilledStripe> {
  let slot = take()
  let fill = 0
  for await (const piece of body) {
    let at = 0
    while (at < piece.length) {
      const n = Math.min(piece.length - at, stripeBytes - fill)
      slot.set(piece.subarray(at, at + n), fill)
      fill += n
      at += n
      if (fill === stripeBytes) {
        yield { slot, length: fill }
        slot = take()
        fill = 0
      }
    }
  }
  if (fill > 0) yield { slot, length: fill }
}
