import { z } from 'zod'
import { compiled } from './compiled.ts'
import { GuestId, MAX_GUESTS } from './messages.ts'
import {
  BriefEntry,
  FileRecord,
  HeldFragment,
  Hex64,
  ListedRecord,
  MAX_BATCH,
  MAX_DIGEST_PARTS,
  MAX_PAGE,
  MAX_RECORDS_PER_REPLY,
  Manifest,
  type PintOp,
  Version,
  WireName,
} from './pint.ts'

/** The data plane's replies, per op (pint.ts has the requests). */

export const PintError = z.object({ code: z.string(), message: z.string() })

/** Replies, per op. Every reply is either { ok: true, ... } or { ok: false, error }. */
/** [domain key, files]: what losing that one domain would make unreadable. */
const DomainCounts = z.array(z.tuple([z.string().max(400), z.number().int().min(0)])).max(MAX_GUESTS)

export const PintReplies = {
  hold: z.object({ ok: z.literal(true), digest: Hex64, bytes: z.number().int() }),
  stash: z.object({ ok: z.literal(true), digest: Hex64, bytes: z.number().int() }),
  /** Sent before the hold's chunks: the holder is ready and has the space. */
  holdReady: z.object({ ok: z.literal(true), ready: z.literal(true) }),
  fetch: z.object({ ok: z.literal(true), manifest: Manifest, bytes: z.number().int() }),
  drop: z.object({ ok: z.literal(true), dropped: z.number().int() }),
  inventory: z.object({ ok: z.literal(true), fragments: z.array(HeldFragment) }),
  /** One `xor.count` string per part (hex XOR of the fragments' fingerprints, and how many), and the holder's totals. */
  digests: z.object({
    ok: z.literal(true),
    parts: z.array(z.string().regex(/^[0-9a-f]{16}\.\d+$/)).max(MAX_DIGEST_PARTS),
    bytes: z.number().int().min(0),
    fragments: z.number().int().min(0),
  }),
  /** At most MAX_RECORDS_PER_REPLY records; `more` when the part holds others after them (ask again with `skip`). */
  recordsIn: z.object({ ok: z.literal(true), records: z.array(FileRecord).max(MAX_RECORDS_PER_REPLY), more: z.boolean().optional() }),
  recordDigests: z.object({ ok: z.literal(true), parts: z.array(z.string().regex(/^[0-9a-f]{16}\.\d+$/)).max(MAX_DIGEST_PARTS) }),
  /** `newer`: a newer version of the name is recorded, or a put of one has begun here (its intent). */
  watch: z.object({ ok: z.literal(true), accepted: z.boolean(), current: FileRecord, replaced: FileRecord.nullable(), newer: z.boolean().optional() }),
  /**
   * `pending`: the newest version a put has announced and not yet recorded, other than the asker's. `fragment`
   * (asked for with `fragmentUpTo`): one of `record`'s fragments this tracker holds, its `bytes` after the reply.
   */
  where: z.object({
    ok: z.literal(true),
    record: FileRecord.nullable(),
    pending: Version.nullable().optional(),
    fragment: z.object({ index: z.number().int().min(0).max(127), manifest: Manifest, bytes: z.number().int().min(0) }).optional(),
  }),
  page: z.object({
    ok: z.literal(true),
    records: z.array(ListedRecord).max(MAX_PAGE),
    brief: z.array(BriefEntry).max(MAX_PAGE).optional(),
    prefixes: z.array(z.string()).max(MAX_PAGE),
    truncated: z.boolean(),
  }),
  sync: z.object({ ok: z.literal(true), accepted: z.number().int() }),
  /** One answer per call, in order: each its op's reply or a failure. */
  batch: z.object({ ok: z.literal(true), replies: z.array(z.unknown()).max(MAX_BATCH) }),
  /** Live files in the arc by how many fragments can be read; `worst`, the 20 closest to loss; `silent`, guests the census did not hear. */
  health: z.object({
    ok: z.literal(true),
    files: z.number().int().min(0),
    healthy: z.number().int().min(0),
    degraded: z.number().int().min(0),
    lost: z.number().int().min(0),
    worst: z.array(z.object({ name: WireName, usable: z.number().int(), needed: z.number().int(), total: z.number().int() })).max(20),
    silent: z.array(GuestId).max(10_000),
    /** For each failure domain (by level) whose loss alone would make readable files unreadable: [domain key, how many]. Absent from guests of earlier releases. */
    atRisk: z.object({ region: DomainCounts, zone: DomainCounts, node: DomainCounts }).optional(),
  }),
} as const
export type PintReply<T extends keyof typeof PintReplies> = z.infer<(typeof PintReplies)[T]>

export const PintFailure = z.object({ ok: z.literal(false), error: PintError })

/** The page reply, checked by a compiled validator: the asker of a listing page checks a thousand records from each guest. */
export const PageReply = compiled(PintReplies.page)

/** The bytes that follow a checked reply of `op` on the wire: a fetch's fragment, or the fragment a where brought. */
export function bytesAfter(op: PintOp, reply: unknown): number {
  const r = reply as { bytes?: unknown; fragment?: { bytes?: unknown } }
  const bytes = op === 'fetch' ? r.bytes : op === 'where' ? r.fragment?.bytes : 0
  return typeof bytes === 'number' ? bytes : 0
}
