import { HousePartyError, isHousePartyError } from '../../shared/errors.ts'
import type { FileRecord, FragmentRef, GuestId } from '../protocol/index.ts'
import { type Brought, type FragmentSource, wholeSource } from '../transfer/index.ts'
import { type FilesContext, wholeFragmentBytes } from './context.ts'

/**
 * The order in which a read tries a file's fragments, only those whose
 * holder is a guest: data fragments first (no decoding), then parity. For a
 * small file read whole, the fragments it has without a call come first of
 * all, parity or not: those this peer holds, and those its trackers
 * `brought` with their answers. A call to another guest costs more CPU than
 * decoding a few KiB.
 */
export function readOrder(
  record: FileRecord,
  options: { self: GuestId | undefined; whole: boolean; isGuest: (id: GuestId) => boolean; brought?: ReadonlySet<number> },
): FragmentRef[] {
  const { k } = record.coding
  const free = (f: FragmentRef): boolean => options.whole && (f.holder === options.self || options.brought?.has(f.index) === true)
  const rank = (f: FragmentRef): number => (free(f) ? 0 : 2) + (f.index < k ? 0 : 1)
  return record.fragments.filter((f) => options.isGuest(f.holder)).sort((a, b) => rank(a) - rank(b) || a.index - b.index)
}

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
  /** Fragments that came with the trackers' answers, by index: taken before any fetch. */
  readonly #brought = new Map<number, Brought>()

  /** `brought`: fragments the record's trackers sent with their answers (a small file's, read whole). */
  constructor(ctx: FilesContext, record: FileRecord, options: { signal?: AbortSignal | undefined; brought?: readonly Brought[] } = {}) {
    this.#ctx = ctx
    this.#record = record
    this.#signal = options.signal
    this.#wholeBytes = wholeFragmentBytes(record.size, record.coding, ctx.inlineBytes)
    if (this.#wholeBytes !== undefined) for (const piece of options.brought ?? []) this.#brought.set(piece.index, piece)
    this.#candidates = readOrder(record, {
      self: ctx.roster.selfId,
      whole: this.#wholeBytes !== undefined,
      isGuest: (id) => ctx.roster.addressOf(id) !== undefined,
      brought: new Set(this.#brought.keys()),
    })
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
          const piece = this.#brought.get(ref.index)
          // A brought fragment that fails its check counts as that fragment failing (its tracker is its holder, or kept a copy).
          if (piece) return (async () => wholeSource(piece.holder, target, piece.manifest, piece.data))()
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
