import type { Clock } from '../../shared/clock.ts'
import type { Logger } from '../../shared/logger.ts'
import { fragmentBytes } from '../codec/index.ts'
import type { Roster } from '../membership/index.ts'
import type { Coding, GuestId } from '../protocol/index.ts'
import { chooseHolders, type PlacementLoad } from '../ring/index.ts'
import type { FragmentClient, FragmentSink, SinkTarget, TrackerClient } from '../transfer/index.ts'

export type Outcome = 'ok' | 'error'

/** Hooks the metrics layer listens on. */
export interface FileEvents {
  put(seconds: number, bytes: number, outcome: Outcome): void
  get(seconds: number, bytes: number, outcome: Outcome): void
  /** A fragment could not be used: its holder was unreachable, or a chunk failed its checksum. */
  fragmentSkipped(reason: 'corrupt' | 'unreachable'): void
  /**
   * Fragments rebuilt from the others (a put whose holder failed mid-stream, or recovery): `kept` when the
   * record that names them was stored, not when another change of the record won and they were dropped.
   */
  fragmentsRebuilt(count: number, bytes: number, kept: boolean): void
}

/** Everything the file operations need from the peer. */
export interface FilesContext {
  roster: Roster
  /** Every data-plane call to a guest (this peer included) goes through it. */
  fragments: FragmentClient
  trackers: TrackerClient
  /** The coding new puts use. */
  coding: Coding
  /** Files up to this size (and one stripe) are put whole and kept inline by their holders (see put-small.ts). */
  inlineBytes: number
  clock: Clock
  log: Logger
  events: FileEvents
  /** What each guest stores, for balanced placement. */
  load: PlacementLoad & { placed(id: GuestId, bytes: number): void }
}

/**
 * Opens one sink per fragment index on distinct guests, in rendezvous order
 * for the name within its failure domains (weighed by what each guest holds),
 * this peer first while it holds no more than the average (its fragment is
 * written to its own disk, not sent). A guest that cannot take
 * its fragment is replaced by the next in line; the call fails only when the
 * party runs out of guests.
 */
export async function openSinks(
  ctx: FilesContext,
  target: Omit<SinkTarget, 'index'>,
  indices: readonly number[],
  exclude: ReadonlySet<GuestId>,
  options: { signal?: AbortSignal | undefined; fragmentBytes?: number; whole?: boolean } = {},
): Promise<FragmentSink[]> {
  const { signal, fragmentBytes = 0, whole = false } = options
  const eligible = ctx.roster
    .guests()
    .map((g) => g.id)
    .filter((id) => !exclude.has(id))
  // Guests excluded because they hold fragments of the file already count against its domains: a rebuilt fragment goes where the file lacks one.
  const placed = [...exclude].filter((id) => ctx.roster.addressOf(id) !== undefined)
  const ranked = chooseHolders({
    candidates: eligible,
    name: target.name,
    count: indices.length,
    tolerate: target.coding.m,
    share: fragmentBytes,
    load: ctx.load,
    domains: (id) => ctx.roster.domainsOf(id),
    placed,
    prefer: ctx.roster.selfId,
  })
  return ctx.fragments.sinks(ranked, target, indices, {
    signal,
    alreadyPlaced: exclude.size,
    placed: (holder) => ctx.load.placed(holder, fragmentBytes),
    whole,
  })
}

/** Whether a file's fragments are kept inline by their holders: one stripe at most, and no larger than `inlineBytes`. */
export function keptWhole(size: number, coding: Coding, inlineBytes: number): boolean {
  return size <= inlineBytes && size <= coding.stripeBytes
}

/** The size of each of a file's fragments when they are kept inline (and so read whole), else undefined. */
export function wholeFragmentBytes(size: number, coding: Coding, inlineBytes: number): number | undefined {
  return keptWhole(size, coding, inlineBytes) ? fragmentBytes(size, coding) : undefined
}
