import { z } from 'zod'

/**
 * Every message peers exchange over UDP, typed and validated here and only
 * here. A datagram whose payload does not match one of these schemas is
 * dropped and counted (reason "schema"), never acted on.
 *
 * Requests carry `rid` (request id); the reply carries the same value in `re`.
 */
export const PROTOCOL_VERSION = 1

/** A guest's place on the ring: 64 bits, as 16 lowercase hex digits. */
export const GuestId = z.string().regex(/^[0-9a-f]{16}$/, 'a guest id is 16 lowercase hex digits')
export type GuestId = z.infer<typeof GuestId>

/** host:port or [v6]:port. Length-bounded so a list always fits a datagram. */
export const Address = z
  .string()
  .min(3)
  .max(255)
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/, 'expected host:port')

export const Guest = z.object({
  id: GuestId,
  /** Where its UDP membership and TCP transfers listen. */
  address: Address,
  apiPort: z.number().int().min(0).max(65535),
  /** Epoch at which it was admitted. */
  since: z.number().int().nonnegative(),
})
export type Guest = z.infer<typeof Guest>

/** The guest list at one epoch. Order is admission order: the first guest coordinates. */
export const View = z.object({
  epoch: z.number().int().nonnegative(),
  guests: z.array(Guest).max(512),
})
export type View = z.infer<typeof View>

const Rid = z
  .number()
  .int()
  .nonnegative()
  .max(2 ** 32)
const Reason = z.enum(['dead', 'leave', 'replaced'])

const msg = <T extends string, S extends z.ZodRawShape>(type: T, shape: S) => z.object({ type: z.literal(type), ...shape }).strict()

// --- failure detection -------------------------------------------------------
export const Ping = msg('ping', { rid: Rid, from: GuestId, epoch: z.number().int().nonnegative() })
/** `held`: bytes of fragments the sender stores, so every guest knows every guest's load for placement. */
export const Pong = msg('pong', { re: Rid, from: GuestId, epoch: z.number().int().nonnegative(), held: z.number().int().nonnegative().optional() })
/** Reply to a ping from an id that is not on the guest list: "you were removed". */
export const NotGuest = msg('notGuest', { re: Rid, epoch: z.number().int().nonnegative() })
/** Ping-voting: "please ping target and tell me if it answers". */
export const PingReq = msg('pingReq', { rid: Rid, from: GuestId, target: GuestId })
export const PingReqResult = msg('pingReqResult', { re: Rid, from: GuestId, target: GuestId, alive: z.boolean() })

// --- joining -----------------------------------------------------------------
export const Knock = msg('knock', { rid: Rid, address: Address })
export const Welcome = msg('welcome', { re: Rid, view: View })
export const Join = msg('join', {
  rid: Rid,
  guest: Guest.omit({ since: true }),
  /** Where the coordinator sends its answer when the join is relayed. */
  replyTo: Address,
  hops: z.number().int().min(0).max(4),
})
export const JoinQueued = msg('joinQueued', { re: Rid, coordinator: GuestId })
export const JoinRejected = msg('joinRejected', {
  re: Rid,
  code: z.enum(['ID_TAKEN', 'NO_COORDINATOR', 'PARTY_FULL']),
  message: z.string().max(300),
})
export const Hello = msg('hello', { rid: Rid, from: GuestId, epoch: z.number().int().nonnegative() })
export const HelloAck = msg('helloAck', { re: Rid, from: GuestId })

// --- removal -----------------------------------------------------------------
export const Remove = msg('remove', { rid: Rid, from: GuestId, target: GuestId, reason: Reason, hops: z.number().int().min(0).max(4) })
export const RemoveQueued = msg('removeQueued', { re: Rid, coordinator: GuestId })

// --- view change (join consensus): prepare / commit, all guests must approve -------
export const Prepare = msg('prepare', {
  rid: Rid,
  from: GuestId,
  proposal: z.string().regex(/^[0-9a-f]{16}$/),
  baseEpoch: z.number().int().nonnegative(),
  view: View,
  removed: z.array(GuestId).max(512),
})
export const PrepareOk = msg('prepareOk', { re: Rid, from: GuestId })
export const PrepareNo = msg('prepareNo', {
  re: Rid,
  from: GuestId,
  code: z.enum(['BUSY', 'STALE', 'AHEAD', 'NOT_COORDINATOR', 'REJECTED']),
  /** With AHEAD: the newer view the voter already has. */
  view: View.optional(),
})
export const Abort = msg('abort', { from: GuestId, proposal: z.string().regex(/^[0-9a-f]{16}$/) })
export const Commit = msg('commit', { rid: Rid, from: GuestId, proposal: z.string().regex(/^[0-9a-f]{16}$/), view: View })
export const CommitAck = msg('commitAck', { re: Rid, from: GuestId, epoch: z.number().int().nonnegative() })
export const ViewRequest = msg('viewRequest', { rid: Rid })
export const ViewState = msg('viewState', { re: Rid, view: View })

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
  PrepareOk,
  PrepareNo,
  Abort,
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
