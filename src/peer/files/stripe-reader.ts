import { HousePartyError, isHousePartyError } from '../../shared/errors.ts'
import type { FileRecord, FragmentRef } from '../protocol/index.ts'
import type { FragmentSource } from '../transfer/index.ts'
import { type FilesContext, wholeFragmentBytes } from './context.ts'

/**
 * Reads a file stripe by stripe from k of its fragments at a time. Data
 * fragments are preferred (no decoding needed); a fragment whose holder
 * fails or whose chunk fails its checksum is dropped mid-file and another
 * is opened at the current stripe, so one bad holder never fails a read
 * that k good ones can serve.
 */
export class StripeReader {
  readonly #ctx: FilesContext
  readonly #record: FileRecord
  readonly #active = new Map<number, FragmentSource>()
  readonly #candidates: FragmentRef[]
  readonly #signal: AbortSignal | undefined
  readonly #skipped: string[] = []
  /** A small file's fragment size: each fragment is fetched whole, in one call on a kept connection. */
  readonly #wholeBytes: number | undefined

  constructor(ctx: FilesContext, record: FileRecord, options: { signal?: AbortSignal } = {}) {
    this.#ctx = ctx
    this.#record = record
    this.#signal = options.signal
    this.#wholeBytes = wholeFragmentBytes(record.size, record.coding, ctx.inlineBytes)
    // Data fragments first (cheapest: no decoding), then parity; only fragments whose holder is a guest.
    this.#candidates = [...record.fragments]
      .filter((f) => ctx.roster.addressOf(f.holder) !== undefined)
      .sort((a, b) => (a.index < record.coding.k ? 0 : 1) - (b.index < record.coding.k ? 0 : 1) || a.index - b.index)
  }

  get k(): number {
    return this.#record.coding.k
  }

  /** Opens k fragments at stripe `from` (a ranged read starts mid-file), or fails naming how many were reachable. */
  async open(from = 0): Promise<void> {
    await this.#fill(from)
  }

  /** The k+m slots of stripe `stripe`, with exactly k filled. */
  async shards(stripe: number): Promise<(Buffer | undefined)[]> {
    const slots: (Buffer | undefined)[] = Array.from({ length: this.#record.coding.k + this.#record.coding.m })
    let pending = [...this.#active.keys()]
    while (pending.length > 0) {
      const results = await Promise.allSettled(pending.map((i) => (this.#active.get(i) as FragmentSource).chunk(stripe)))
      const failed: number[] = []
      results.forEach((r, n) => {
        const index = pending[n] as number
        if (r.status === 'fulfilled') slots[index] = r.value
        else {
          this.#drop(index, r.reason)
          failed.push(index)
        }
      })
      pending = failed.length > 0 ? await this.#fill(stripe) : []
    }
    return slots
  }

  close(): void {
    for (const source of this.#active.values()) source.close()
    this.#active.clear()
  }

  /** Opens fragments until k are active; returns the indices it opened. */
  async #fill(fromChunk: number): Promise<number[]> {
    const opened: number[] = []
    while (this.#active.size < this.k) {
      const want = this.k - this.#active.size
      const batch = this.#candidates.splice(0, want)
      if (batch.length === 0) {
        const have = this.#active.size
        throw new HousePartyError(
          'ERR_NOT_ENOUGH_FRAGMENTS',
          `${JSON.stringify(this.#record.name)}: only ${have} of ${this.#record.fragments.length} fragments usable, ${this.k} needed` +
            (this.#skipped.length ? ` (${this.#skipped.slice(0, 4).join('; ')})` : ''),
          { details: { needed: this.k, reachable: have, fragments: this.#record.fragments.length } },
        )
      }
      const results = await Promise.allSettled(
        batch.map((ref) => {
          const target = { name: this.#record.name, version: this.#record.version, index: ref.index, digest: ref.digest }
          return this.#ctx.fragments.source(ref.holder, target, fromChunk, this.#signal, this.#wholeBytes)
        }),
      )
      results.forEach((r, n) => {
        const ref = batch[n] as FragmentRef
        if (r.status === 'fulfilled') {
          this.#active.set(ref.index, r.value)
          opened.push(ref.index)
        } else this.#note(ref.index, ref.holder, r.reason)
      })
    }
    return opened
  }

  #drop(index: number, reason: unknown): void {
    const source = this.#active.get(index)
    source?.close()
    this.#active.delete(index)
    this.#note(index, source?.holder ?? '?', reason)
  }

  #note(index: number, holder: string, reason: unknown): void {
    if (this.#signal?.aborted) throw new HousePartyError('ERR_ABORTED', 'read aborted')
    const corrupt = isHousePartyError(reason, 'ERR_CHECKSUM_MISMATCH')
    this.#ctx.events.fragmentSkipped(corrupt ? 'corrupt' : 'unreachable')
    this.#skipped.push(`fragment ${index} on ${holder}: ${(reason as Error).message}`)
    this.#ctx.log.warn({ name: this.#record.name, version: this.#record.version, index, holder, err: (reason as Error).message }, 'fragment skipped')
  }
}
