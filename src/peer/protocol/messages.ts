import { z } from 'zod'

/**
 * Every message peers exchange over UDP, typed and validated here and only
 * here. A datagram whose payload does not match one of these schemas is
 * dropped and counted (reason "schema"), never acted on.
 *
 * Requests carry `rid` (request id); the reply carries the same value in `re`.
 * docs/protocol.md describes what each message does.
 */
export const PROTOCOL_VERSION = 2

/** The most guests one party holds. A full guest list travels in pages (viewState), never in one datagram. */
export const MAX_GUESTS = 4096
/** Guests per viewState page: with 255-character addresses and the longest domain names a page still fits well inside a datagram. */
export const VIEW_PAGE_GUESTS = 48
/** Newcomers one view change admits, so a proposal always fits a datagram however many knock at once. */
export const MAX_NEWCOMERS_PER_CHANGE = 32
/** Guests one view change removes; more wait for the next change. */
export const MAX_REMOVALS_PER_CHANGE = 1024

/** A guest's place on the ring: 64 bits, as 16 lowercase hex digits. Chosen once, kept for life. */
export const GuestId = z.string().regex(/^[0-9a-f]{16}$/, 'a guest id is 16 lowercase hex digits')
export type GuestId = z.infer<typeof GuestId>

/** host:port or [v6]:port. Length-bounded so a page of guests always fits a datagram. */
export const Address = z
  .string()
  .min(3)
  .max(255)
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/, 'expected host:port')

const Epoch = z.number().int().nonnegative()
/** Event-loop lag a peer measured on itself, ms (Lifeguard: everyone's timeouts stretch with it). */
const Lag = z.number().int().min(0).max(3_600_000)
/** Starts of one peer's process with one identity: a restart on the same data dir counts up. */
const Incarnation = z.number().int().nonnegative()

/** A Kubernetes node name (DNS subdomain) or a topology label value: letters, digits, '-', '_', '.'. */
const DomainName = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/, 'expected letters, digits, "-", "_" or "." (starting and ending with a letter or digit)')

/**
 * Where a guest runs, for placing a file's fragments so that losing one node
 * or one zone loses at most m of them. Each is optional: a guest without a
 * node is a node of its own, without a zone its node is a zone of its own,
 * without a region its zone is a region of its own.
 */
export const Domains = z.object({
  node: DomainName(253).optional(),
  zone: DomainName(63).optional(),
  region: DomainName(63).optional(),
})
export type Domains = z.infer<typeof Domains>

export const Newcomer = z.object({
  id: GuestId,
  /** Where its UDP membership and TCP transfers listen. */
  address: Address,
  apiPort: z.number().int().min(0).max(65535),
  incarnation: Incarnation,
  /** Its failure domains (absent: its own, as for a peer started without --node or --zone). */
  domains: Domains.optional(),
})
export type Newcomer = z.infer<typeof Newcomer>

export const Guest = Newcomer.extend({
  /** Epoch at which it was admitted. */
  since: Epoch,
})
export type Guest = z.infer<typeof Guest>

/** The guest list at one epoch. Order is admission order: the first guest is the longest-standing. */
export const View = z.object({
  epoch: Epoch,
  guests: z.array(Guest).max(MAX_GUESTS),
})
export type View = z.infer<typeof View>

/**
 * Why a guest leaves the list: voted dead, left on its own for good (its data
 * handed off), stepped out for a restart on the same data dir (it is coming
 * back: what it holds waits for it, as for the dead), or replaced by a newer
 * start that lost the old one's state.
 */
export const RemovalReason = z.enum(['dead', 'leave', 'restart', 'replaced'])
/** The reasons a guest gives for its own removal: it consents, so it votes on it too. */
export type LeaveReason = Extract<RemovalReason, 'leave' | 'restart'>
export const isOwnLeave = (reason: RemovalReason): reason is LeaveReason => reason === 'leave' || reason === 'restart'
export type RemovalReason = z.infer<typeof RemovalReason>

/**
 * One step from a view to the next: who goes (with why), who comes in, and
 * which guests come back as a newer start of themselves (a restart on the
 * same data dir, maybe at a new address): they keep their place.
 */
export const Change = z.object({
  remove: z.array(z.object({ id: GuestId, reason: RemovalReason })).max(MAX_REMOVALS_PER_CHANGE),
  add: z.array(Newcomer).max(MAX_NEWCOMERS_PER_CHANGE),
  update: z.array(Newcomer).max(MAX_NEWCOMERS_PER_CHANGE),
})
export type Change = z.infer<typeof Change>

/** A proposal number (Paxos ballot): higher round wins, ties broken by proposer id. */
export const Ballot = z.object({ round: z.number().int().nonnegative(), by: GuestId })
export type Ballot = z.infer<typeof Ballot>

/** First 16 hex digits of the sha256 of a view: two guests with one epoch and one digest hold the same list. */
const Digest = z.string().regex(/^[0-9a-f]{16}$/)

const Rid = z
  .number()
  .int()
  .nonnegative()
  .max(2 ** 32)

const msg = <T extends string, S extends z.ZodRawShape>(type: T, shape: S) => z.object({ type: z.literal(type), ...shape }).strict()

// --- failure detection -------------------------------------------------------
/** `held`: bytes of fragments the sender stores (placement balances on it); `lag`: its own event-loop lag. */
export const Ping = msg('ping', { rid: Rid, from: GuestId, epoch: Epoch, lag: Lag, held: z.number().int().nonnegative().optional() })
export const Pong = msg('pong', { re: Rid, from: GuestId, epoch: Epoch, lag: Lag, held: z.number().int().nonnegative().optional() })
/** Reply to a ping from an id that is not on the guest list (or sent to a peer that is not a guest): "you are not a guest here". */
export const NotGuest = msg('notGuest', { re: Rid, epoch: Epoch })
/** Ping-voting: "please ping target for up to windowMs and tell me if it answers". */
export const PingReq = msg('pingReq', { rid: Rid, from: GuestId, target: GuestId, epoch: Epoch, windowMs: z.number().int().min(1).max(600_000) })
/** `abstain`: the voter is itself starved or just woke from a pause, so its silence proves nothing. */
export const PingReqResult = msg('pingReqResult', { re: Rid, from: GuestId, target: GuestId, verdict: z.enum(['alive', 'unreachable', 'abstain']) })

// --- joining -----------------------------------------------------------------
export const Knock = msg('knock', { rid: Rid, address: Address })
/** A guest opens its door: who it is (so a guest that lost track learns where it is now), the party's epoch and size, and who coordinates. */
export const Welcome = msg('welcome', { re: Rid, from: GuestId, epoch: Epoch, guests: z.number().int().min(1).max(MAX_GUESTS), coordinator: Address })
/** Asks to be admitted, or (from a guest restarted on its old data) to have its entry point at this start. */
export const Join = msg('join', {
  rid: Rid,
  guest: Newcomer,
  /**
   * The sender restarted on its data dir and still holds the membership state of its entry on the list
   * (the guest list and its Paxos votes): its entry is updated in place and it keeps voting as that guest.
   * Without that state a newer start replaces the old entry instead.
   */
  resumed: z.boolean(),
  /** Where the coordinator sends its answer when the join is relayed. */
  replyTo: Address,
  hops: z.number().int().min(0).max(4),
})
/** `admitted`: the newcomer is on the list already as this very start (its commit was lost): it should fetch the list. */
export const JoinQueued = msg('joinQueued', { re: Rid, coordinator: GuestId, admitted: z.boolean() })
export const JoinRejected = msg('joinRejected', {
  re: Rid,
  code: z.enum(['SUPERSEDED', 'PARTY_FULL']),
  message: z.string().max(300),
})
export const Hello = msg('hello', { rid: Rid, from: GuestId, epoch: Epoch })
export const HelloAck = msg('helloAck', { re: Rid, from: GuestId })

// --- removal -----------------------------------------------------------------
export const Remove = msg('remove', {
  rid: Rid,
  from: GuestId,
  targets: z
    .array(z.object({ id: GuestId, reason: RemovalReason }))
    .min(1)
    .max(MAX_REMOVALS_PER_CHANGE),
  hops: z.number().int().min(0).max(4),
})
export const RemoveQueued = msg('removeQueued', { re: Rid, coordinator: GuestId })

// --- view change: single-decree Paxos per epoch ------------------------------------
/** Phase 1: "promise me nothing below this ballot for the view after baseEpoch". `change` is what the proposer means to propose. */
export const Prepare = msg('prepare', { rid: Rid, from: GuestId, baseEpoch: Epoch, ballot: Ballot, change: Change })
export const PromiseGiven = msg('promise', {
  re: Rid,
  from: GuestId,
  baseEpoch: Epoch,
  ballot: Ballot,
  /** A change this guest accepted earlier for the same epoch: the proposer must finish it instead of its own. */
  accepted: z.object({ ballot: Ballot, change: Change }).optional(),
  /** Guests the proposal removes that this guest heard from a moment ago: it objects to their removal. */
  alive: z.array(GuestId).max(MAX_REMOVALS_PER_CHANGE).optional(),
})
/** Phase 2: "accept this change as the view after baseEpoch"; `digest` is the digest of the resulting view. */
export const Accept = msg('accept', { rid: Rid, from: GuestId, baseEpoch: Epoch, ballot: Ballot, change: Change, digest: Digest })
export const Accepted = msg('accepted', { re: Rid, from: GuestId, baseEpoch: Epoch, ballot: Ballot })
/**
 * A refusal. NEWER_EPOCH: the sender is past baseEpoch (sync from it). OLDER_EPOCH: it is behind and
 * is catching up. PROMISED: it promised `promised`, a higher ballot. CONFLICT: the change does not apply to its view.
 */
export const Nack = msg('nack', {
  re: Rid,
  from: GuestId,
  epoch: Epoch,
  code: z.enum(['NEWER_EPOCH', 'OLDER_EPOCH', 'PROMISED', 'CONFLICT']),
  promised: Ballot.optional(),
})
/** The change was chosen (a quorum accepted it): install it. Sent to every guest, newcomer and removed guest. */
export const Commit = msg('commit', { rid: Rid, from: GuestId, baseEpoch: Epoch, change: Change, digest: Digest })
export const CommitAck = msg('commitAck', { re: Rid, from: GuestId, epoch: Epoch })

// --- catching up -------------------------------------------------------------------
/** Asks for the guest list from `offset` on. */
export const ViewRequest = msg('viewRequest', { rid: Rid, offset: z.number().int().min(0).max(MAX_GUESTS) })
/** One page of the sender's guest list; a reader keeps asking until it has `total` guests of one epoch and digest. */
export const ViewState = msg('viewState', {
  re: Rid,
  epoch: Epoch,
  digest: Digest,
  total: z.number().int().min(0).max(MAX_GUESTS),
  offset: z.number().int().min(0).max(MAX_GUESTS),
  guests: z.array(Guest).max(VIEW_PAGE_GUESTS),
})

export const Message = z.discriminatedUnion('type', [
  Ping,
  Pong,
  NotGuest,
  PingReq,
  PingReqResult,
  Knock,
  Welcome,
  Join,
  JoinQueued,
  JoinRejected,
  Hello,
  HelloAck,
  Remove,
  RemoveQueued,
  Prepare,
  PromiseGiven,
  Accept,
  Accepted,
  Nack,
  Commit,
  CommitAck,
  ViewRequest,
  ViewState,
])
export type Message = z.infer<typeof Message>
export type MessageType = Message['type']
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>

/** Replies: the messages that answer a request and carry `re`. */
export type Reply = Extract<Message, { re: number }>
/** Requests: the messages that expect a reply and carry `rid`. */
export type Request = Extract<Message, { rid: number }>

export const MESSAGE_TYPES: readonly MessageType[] = Message.options.map((o) => o.shape.type.value)

export function parseMessage(value: unknown): Message | undefined {
  const r = Message.safeParse(value)
  return r.success ? r.data : undefined
}
