import type { Clock } from '../../shared/clock.ts'
import { HousePartyError } from '../../shared/errors.ts'
import type { Logger } from '../../shared/logger.ts'
import type { Roster } from '../membership/index.ts'
import type { DialOptions } from '../net/index.ts'
import type { Coding, GuestId } from '../protocol/index.ts'
import { chooseHolders, type PlacementLoad } from '../ring/index.ts'
import type { FragmentStore } from '../store/index.ts'
import type { TrackerClient } from '../tracker/index.ts'
import {
  type FragmentSink,
  type FragmentSource,
  LocalSink,
  LocalSource,
  RemoteSink,
  RemoteSource,
  type SinkTarget,
  type SourceTarget,
} from '../transfer/index.ts'

export type Outcome = 'ok' | 'error'

/** Hooks the metrics layer listens on. */
export interface FileEvents {
  put(seconds: number, bytes: number, outcome: Outcome): void
  get(seconds: number, bytes: number, outcome: Outcome): void
  /** A fragment could not be used: its holder was unreachable, or a chunk failed its checksum. */
  fragmentSkipped(reason: 'corrupt' | 'unreachable'): void
  /** A fragment was rebuilt from the others (a put whose holder failed mid-stream, or recovery). */
  fragmentRebuilt(bytes: number): void
}

/** Everything the file operations need from the peer. */
export interface FilesContext {
  roster: Roster
  dial: DialOptions
  trackers: TrackerClient
  /** The coding new puts use. */
  coding: Coding
  clock: Clock
  log: Logger
  events: FileEvents
  /** What each guest stores, for balanced placement. */
  load: PlacementLoad & { placed(id: GuestId, bytes: number): void }
  /** This peer's own store: fragments placed here are written to it directly. */
  store?: FragmentStore
}

/** This peer's store when `holder` is this peer, else the guest's address; ERR_GUEST_NOT_FOUND once it left the party. */
function reach(ctx: FilesContext, holder: GuestId): { store: FragmentStore } | { address: string } {
  if (ctx.store && holder === ctx.roster.selfId) return { store: ctx.store }
  const address = ctx.roster.addressOf(holder)
  if (!address) throw new HousePartyError('ERR_GUEST_NOT_FOUND', `guest ${holder} left the party`)
  return { address }
}

/** A sink for one fragment on `holder`: this peer's own store, or another guest over TCP. */
export async function openSink(ctx: FilesContext, holder: GuestId, target: SinkTarget, signal?: AbortSignal): Promise<FragmentSink> {
  const where = reach(ctx, holder)
  if ('store' in where) return LocalSink.open(holder, where.store, target)
  return RemoteSink.open(holder, where.address, target, { ...ctx.dial, signal })
}

/** A source for one fragment held by `holder`, from stripe `fromChunk` on: this peer's own disk, or another guest over TCP. */
export async function openSource(ctx: FilesContext, holder: GuestId, target: SourceTarget, fromChunk: number, signal?: AbortSignal): Promise<FragmentSource> {
  const where = reach(ctx, holder)
  if ('store' in where) return LocalSource.open(holder, where.store, target)
  return RemoteSource.open(holder, where.address, target, fromChunk, { ...ctx.dial, signal })
}

/**
 * Opens one sink per fragment index on distinct guests, in rendezvous order
 * for the name. A guest that cannot take its fragment is replaced by the next
 * in line; the call fails only when the party runs out of guests.
 */
export async function openSinks(
  ctx: FilesContext,
  target: Omit<SinkTarget, 'index'>,
  indices: readonly number[],
  exclude: ReadonlySet<GuestId>,
  options: { signal?: AbortSignal; fragmentBytes?: number } = {},
): Promise<FragmentSink[]> {
  const { signal, fragmentBytes = 0 } = options
  const eligible = ctx.roster
    .guests()
    .map((g) => g.id)
    .filter((id) => !exclude.has(id))
  const ranked = chooseHolders(eligible, target.name, indices.length, fragmentBytes, ctx.load)
  const sinks: FragmentSink[] = []
  const failures: string[] = []
  let next = 0
  let wanted = [...indices]
  while (wanted.length > 0 && next < ranked.length) {
    const round = wanted.slice(0, ranked.length - next).map((index) => ({ index, holder: ranked[next++] as GuestId }))
    const unassigned = wanted.slice(round.length)
    const opened = await Promise.allSettled(round.map(({ index, holder }) => openSink(ctx, holder, { ...target, index }, signal)))
    wanted = unassigned
    opened.forEach((result, i) => {
      const { index, holder } = round[i] as { index: number; holder: GuestId }
      if (result.status === 'fulfilled') {
        sinks.push(result.value)
        ctx.load.placed(holder, fragmentBytes)
      } else {
        failures.push(`${holder}: ${(result.reason as Error).message}`)
        ctx.log.warn({ holder, index, err: (result.reason as Error).message }, 'guest cannot take a fragment; trying the next')
        wanted.push(index)
      }
    })
  }
  if (wanted.length > 0) {
    for (const sink of sinks) sink.fail(new HousePartyError('ERR_ABORTED', 'put abandoned'))
    const needed = indices.length + exclude.size
    const reachable = sinks.length + exclude.size
    throw new HousePartyError(
      'ERR_NOT_ENOUGH_PEERS',
      `${indices.length} fragments need ${indices.length} distinct guests; only ${sinks.length} of the ${ranked.length} eligible could take one${failures.length ? ` (${failures.slice(0, 3).join('; ')})` : ''}`,
      { details: { needed, reachable, guests: ctx.roster.guests().length } },
    )
  }
  return sinks.sort((a, b) => a.index - b.index)
}
