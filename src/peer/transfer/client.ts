import { HousePartyError, isHousePartyError } from '../../shared/errors.ts'
import type { Logger } from '../../shared/logger.ts'
import type { Roster } from '../membership/index.ts'
import { type CallBatcher, call, type DialOptions } from '../net/index.ts'
import { type FileRecord, type FragmentRef, type GuestId, type HeldFragment, type HoldTrailer, PintReplies } from '../protocol/index.ts'
import type { Arc } from '../ring/index.ts'
import type { FragmentStore } from '../store/index.ts'
import { type FragmentSink, type Held, LocalSink, RemoteSink, type SinkTarget, WholeSink } from './sink.ts'
import { type FragmentSource, fetchWholeCall, LocalSource, RemoteSource, type SourceTarget, wholeSource } from './source.ts'

export interface FragmentClientOptions {
  /** Who the guests are and where each was last heard from: every call dials through it. */
  roster: Roster
  dial: Omit<DialOptions, 'signal'>
  /** This peer's own store: fragments placed on this peer are read and written directly, not over TCP. */
  store?: FragmentStore | undefined
  log: Logger
  /** Gathers the stashes a burst of small puts makes to one guest into fewer requests. */
  batcher?: CallBatcher | undefined
}

/** One fragment index given to a guest, with what the attempt returned. */
export interface Placed<T> {
  index: number
  holder: GuestId
  value: T
}

/** A holder's digests of one arc: one `xor.count` string per part, and what it holds in all. */
export interface HolderDigests {
  parts: string[]
  bytes: number
  fragments: number
}

/**
 * Every peer-to-peer data-plane call: fragments written (holdMyPint) and
 * read, dropped, and inventories asked. Callers name guests, never
 * addresses: the roster says where each guest is now (where its last
 * authenticated datagram came from), so a guest restarted at a new address
 * is reached at once. Every call that waits takes an AbortSignal.
 */
export class FragmentClient {
  readonly #roster: Roster
  readonly #dial: Omit<DialOptions, 'signal'>
  readonly #store: FragmentStore | undefined
  readonly #log: Logger
  readonly #batcher: CallBatcher | undefined

  constructor(options: FragmentClientOptions) {
    this.#roster = options.roster
    this.#dial = options.dial
    this.#store = options.store
    this.#log = options.log
    this.#batcher = options.batcher
  }

  /**
   * A sink for one fragment on `holder`: this peer's own store, or another
   * guest over TCP; `whole` for a fragment of one chunk at most, sent in one
   * `stash` and kept inline by the holder.
   */
  async sink(holder: GuestId, target: SinkTarget, signal?: AbortSignal, whole = false): Promise<FragmentSink> {
    const where = this.#reach(holder)
    if (whole) return new WholeSink(holder, target.index, (trailer, data, checksum) => this.stash(holder, target, trailer, data, checksum, signal))
    if ('store' in where) return LocalSink.open(holder, where.store, target)
    return RemoteSink.open(holder, where.address, target, { ...this.#dial, signal })
  }

  /**
   * holdMyPint for a small fragment held whole in memory (at most one chunk):
   * one call, on a kept connection, and the holder keeps it in its table.
   * `checksum` is the chunk's CRC-32 (none for an empty file).
   */
  async stash(holder: GuestId, target: SinkTarget, trailer: HoldTrailer, data: Buffer, checksum: Buffer | undefined, signal?: AbortSignal): Promise<Held> {
    const where = this.#reach(holder)
    const { name, version, index, coding } = target
    if ('store' in where) return where.store.stash({ name, version, index }, coding, trailer, data, checksum)
    const body = { op: 'stash' as const, name, version, index, coding, trailer }
    const reply = this.#batcher
      ? await this.#batcher.call(where.address, body, PintReplies.stash, signal, { data, checksum })
      : await call(where.address, body, PintReplies.stash, { ...this.#dial, signal }, { payload: (channel) => channel.writeWholeChunk(data, checksum) })
    if (reply.digest !== trailer.digest) throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `holder ${holder} stored a different fragment digest`)
    return reply
  }

  /**
   * A source for one fragment held by `holder`, from stripe `fromChunk` on.
   * `wholeBytes` (the fragment's size) for a small fragment, fetched whole
   * in one call on a kept connection, batched with other fetches to the
   * holder when there is a batcher.
   */
  async source(holder: GuestId, target: SourceTarget, fromChunk: number, signal?: AbortSignal, wholeBytes?: number): Promise<FragmentSource> {
    const where = this.#reach(holder)
    if ('store' in where) return LocalSource.open(holder, where.store, target)
    if (wholeBytes === undefined || fromChunk !== 0) return RemoteSource.open(holder, where.address, target, fromChunk, { ...this.#dial, signal })
    if (this.#batcher) {
      try {
        const { reply, data } = await this.#batcher.callForBytes(where.address, fetchWholeCall(target), PintReplies.fetch, wholeBytes, signal)
        return wholeSource(holder, target, reply.manifest, data)
      } catch (err) {
        // A holder that predates fetches in batches closes the connection on one: fetch alone.
        if (!isHousePartyError(err, 'ERR_TRANSFER_FAILED')) throw err
      }
    }
    return RemoteSource.fetchWhole(holder, where.address, target, { ...this.#dial, signal })
  }

  /**
   * Opens one sink per fragment index on distinct guests, taking `ranked`
   * in order (see place). `placed` hears of every fragment a guest accepted
   * (for load estimates).
   */
  async sinks(
    ranked: readonly GuestId[],
    target: Omit<SinkTarget, 'index'>,
    indices: readonly number[],
    options: { signal?: AbortSignal | undefined; alreadyPlaced?: number; placed?: (holder: GuestId) => void; whole?: boolean } = {},
  ): Promise<FragmentSink[]> {
    const { signal } = options
    const opened = await this.place(ranked, indices, (index, holder) => this.sink(holder, { ...target, index }, signal, options.whole), {
      ...options,
      abandon: (sinks) => {
        for (const { value } of sinks) value.fail(new HousePartyError('ERR_ABORTED', 'put abandoned'))
      },
    })
    return opened.map((p) => p.value)
  }

  /**
   * Gives each fragment index to a distinct guest, taking `ranked` in
   * order: `attempt` runs for the next guest in line when one fails. When
   * the ranking runs out (or `signal` aborts), `abandon` hears of what was
   * placed and the call fails with ERR_NOT_ENOUGH_PEERS (or ERR_ABORTED).
   * `placed` hears of every fragment a guest took. In index order.
   */
  async place<T>(
    ranked: readonly GuestId[],
    indices: readonly number[],
    attempt: (index: number, holder: GuestId) => Promise<T>,
    options: {
      signal?: AbortSignal | undefined
      alreadyPlaced?: number
      placed?: (holder: GuestId) => void
      abandon: (placed: Placed<T>[]) => Promise<void> | void
    },
  ): Promise<Placed<T>[]> {
    const { signal, alreadyPlaced = 0 } = options
    const done: Placed<T>[] = []
    const failures: string[] = []
    let next = 0
    let wanted = [...indices]
    while (wanted.length > 0 && next < ranked.length) {
      const round = wanted.slice(0, ranked.length - next).map((index) => ({ index, holder: ranked[next++] as GuestId }))
      wanted = wanted.slice(round.length)
      const results = await Promise.allSettled(round.map(({ index, holder }) => attempt(index, holder)))
      results.forEach((result, i) => {
        const { index, holder } = round[i] as { index: number; holder: GuestId }
        if (result.status === 'fulfilled') {
          done.push({ index, holder, value: result.value })
          options.placed?.(holder)
        } else {
          failures.push(`${holder}: ${(result.reason as Error).message}`)
          this.#log.warn({ holder, index, err: (result.reason as Error).message }, 'guest cannot take a fragment; trying the next')
          wanted.push(index)
        }
      })
      if (signal?.aborted) {
        await options.abandon(done)
        throw new HousePartyError('ERR_ABORTED', 'put abandoned')
      }
    }
    if (wanted.length > 0) {
      await options.abandon(done)
      throw new HousePartyError(
        'ERR_NOT_ENOUGH_PEERS',
        `${indices.length} fragments need ${indices.length} distinct guests; only ${done.length} of the ${ranked.length} eligible could take one${failures.length ? ` (${failures.slice(0, 3).join('; ')})` : ''}`,
        { details: { needed: indices.length + alreadyPlaced, reachable: done.length + alreadyPlaced, guests: this.#roster.guests().length } },
      )
    }
    return done.sort((a, b) => a.index - b.index)
  }

  /**
   * Best effort: asks each holder to delete its fragment of this version (with `storedBy`, only a copy stored no
   * later than that). Holders that left are skipped; failures are logged, not thrown.
   */
  async drop(record: Pick<FileRecord, 'name' | 'version'>, refs: readonly FragmentRef[], signal?: AbortSignal, storedBy?: number): Promise<void> {
    await Promise.allSettled(
      refs.map(async (ref) => {
        const address = this.#roster.addressOf(ref.holder)
        if (!address) return
        try {
          const body = { op: 'drop' as const, name: record.name, version: record.version, index: ref.index, ...(storedBy === undefined ? {} : { storedBy }) }
          await call(address, body, PintReplies.drop, { ...this.#dial, signal })
        } catch (err) {
          this.#log.debug({ err: (err as Error).message, holder: ref.holder }, 'could not drop a fragment')
        }
      }),
    )
  }

  /** Every fragment one guest holds. */
  async inventory(holder: GuestId, signal?: AbortSignal): Promise<HeldFragment[]> {
    const address = this.#roster.addressOf(holder)
    if (!address) throw new HousePartyError('ERR_GUEST_NOT_FOUND', `no guest ${holder}`)
    const reply = await call(address, { op: 'inventory' }, PintReplies.inventory, { ...this.#dial, signal })
    return reply.fragments
  }

  /** What `holder` keeps in each part of `arc`, as digests, with its totals (anti-entropy). */
  async digests(holder: GuestId, arc: Arc, parts: number, signal?: AbortSignal): Promise<HolderDigests> {
    const where = this.#reach(holder)
    if ('store' in where) return { parts: where.store.digestsIn(arc, parts).encode(), bytes: where.store.bytes, fragments: where.store.count }
    return call(where.address, { op: 'digests', arc, parts }, PintReplies.digests, { ...this.#dial, signal })
  }

  /** The fragments `holder` keeps in the selected parts of `arc`. */
  async inventoryIn(holder: GuestId, arc: Arc, parts: number, select: readonly number[], signal?: AbortSignal): Promise<HeldFragment[]> {
    const where = this.#reach(holder)
    if ('store' in where) return where.store.listIn(arc, select, parts)
    const reply = await call(where.address, { op: 'inventory', arc, parts, select: [...select] }, PintReplies.inventory, { ...this.#dial, signal })
    return reply.fragments
  }

  /** This peer's store when `holder` is this peer, else the guest's address; ERR_GUEST_NOT_FOUND once it left the party. */
  #reach(holder: GuestId): { store: FragmentStore } | { address: string } {
    if (this.#store && holder === this.#roster.selfId) return { store: this.#store }
    const address = this.#roster.addressOf(holder)
    if (!address) throw new HousePartyError('ERR_GUEST_NOT_FOUND', `guest ${holder} left the party`)
    return { address }
  }
}
