import type { MembershipTimings } from '../../shared/config.ts'
import type { Ballot, Change, Guest, GuestId, Message, Newcomer, RemovalReason, View } from '../protocol/index.ts'
import type { LagMeter } from './lag.ts'
import type { Requests } from './requests.ts'

export type MembershipStatus = 'idle' | 'joining' | 'guest' | 'leaving' | 'left' | 'superseded' | 'stopped'

/** This guest's vote on the list after `baseEpoch` (Paxos acceptor state). */
export interface AcceptorState {
  baseEpoch: number
  promised?: Ballot | undefined
  accepted?: { ballot: Ballot; change: Change; digest: string } | undefined
}

/**
 * What membership keeps on disk, written before any answer that depends on
 * it: the list this peer is on and its vote on the next one. A peer
 * restarted on its data dir resumes as the same guest with the same votes,
 * so restarts (even of most of the party at once) never leave a list that
 * nobody alive can change.
 */
export interface PersistedMembership {
  /** The list this peer was last on (absent: on none, e.g. removed or left). */
  view?: View | undefined
  /** The highest epoch it was ever on: an older list never reinstates it. */
  floorEpoch: number
  acceptor?: AcceptorState | undefined
}

/** What the membership core counts (houseparty_membership_events_total{event}). */
export const MEMBERSHIP_EVENTS = [
  'founded',
  'admitted',
  'rejoining',
  'guest_added',
  'guest_removed',
  'guest_left',
  'removed_self',
  'superseded',
  'resumed',
  'suspected',
  'vote_alive',
  'vote_dead',
  'vote_inconclusive',
  'vote_abstained',
  'removal_refuted',
  'proposal_committed',
  'proposal_aborted',
  'no_quorum',
  'view_synced',
  'join_rejected',
  'pause_detected',
] as const
export type MembershipEvent = (typeof MEMBERSHIP_EVENTS)[number]

export interface ViewChange {
  before: View | undefined
  after: View
  added: Guest[]
  removed: Guest[]
  /** Why each removed guest went, where the change said so (a guest list fetched whole does not). */
  reasons: ReadonlyMap<GuestId, RemovalReason>
}

/** The subset of a pino logger the core writes to: fields first, a fixed message. */
export interface CoreLog {
  debug(fields: object, msg: string): void
  info(fields: object, msg: string): void
  warn(fields: object, msg: string): void
  error(fields: object, msg: string): void
}

/** Everything observable that the core does, besides sending messages. */
export type CoreOutput =
  | { kind: 'event'; event: MembershipEvent }
  | { kind: 'view'; change: ViewChange }
  | { kind: 'status'; status: MembershipStatus }
  /** A vote found a guest dead; `silentMs` is from its last word to the verdict. */
  | { kind: 'deathDeclared'; id: GuestId; silentMs: number }
  /** This guest accepted a change for the view after `baseEpoch` (the simulator checks quorums with it). */
  | { kind: 'accepted'; baseEpoch: number; digest: string }
  /** A datagram nobody was waiting for (a late reply): dropped and counted. */
  | { kind: 'unexpected' }

/**
 * The world outside the core: it sends, draws random numbers and resolves
 * names for the core, and is told what happened. Network, timers and
 * randomness stay out here, so a simulator can run many cores on one clock.
 */
export interface CoreEnv {
  send(to: string, msg: Message): void
  /** Uniform in [0, 1). */
  random(): number
  /** Expands door names; the answer comes back through `MembershipCore.doorsResolved`. */
  resolveDoors(doors: readonly string[]): void
  /** Bytes of fragments this peer holds, told to the others in pings. */
  heldBytes(): number
  /** Makes the membership state durable before returning (it is about to be relied on in an answer). */
  persist(state: PersistedMembership): void
  output(out: CoreOutput): void
  log: CoreLog
}

export interface CoreOptions {
  /** This peer: its identity (kept for life) and where it listens. */
  self: Newcomer
  /** Doors given by the user (--join); empty founds a new party. */
  join: readonly string[]
  foundIfAlone: boolean
  timings: MembershipTimings
  /** The state saved by an earlier start on the same data dir. */
  restored?: PersistedMembership | undefined
}

/** The state every role of the core reads, and the few things every role does. */
export interface Shared {
  readonly self: Newcomer
  readonly timings: MembershipTimings
  readonly env: CoreEnv
  readonly requests: Requests
  readonly lag: LagMeter
  /** Monotonic ms of the step being taken. */
  readonly now: number
  readonly status: MembershipStatus
  /** The guest list, while this peer is on it. */
  readonly view: View | undefined
  /** Guests other than this peer. */
  others(): readonly Guest[]
  /**
   * Where to send to a guest: the address its authenticated messages last
   * came from, else the one on the list. A guest restarted at a new address
   * is reachable again before the list says so.
   */
  addressOf(g: Guest): string
  event(event: MembershipEvent): void
  /** How much to stretch a timeout that involves `id` (and this peer): the worst recent lag either reported. */
  stretch(id?: GuestId): number
  /** Fetches the guest list from `address` if it says it is at a newer epoch. */
  noticeEpoch(epoch: number, address: string): void
  /** Saves the membership state (the list and this guest's votes) durably. */
  persist(): void
}
