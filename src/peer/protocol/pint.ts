import { z } from 'zod'
import { GuestId } from './messages.ts'

/**
 * The data plane: requests carried over TCP on the peer's --port (the same
 * number as its UDP membership port). A connection carries one request at a
 * time; once the reply is read whole the client may send the next on it:
 *
 *   client → server  request frame   (JSON, authenticated by TLS or an HMAC: net/tcp.ts)
 *                    [hold: chunk stream, then a trailer frame; stash: one chunk]
 *   server → client  response frame  (bound to the request: its TLS session, or its nonce under the HMAC)
 *                    [fetch: the fragment's raw bytes; where: a fragment it brought; batch: those, in order]
 *
 * Framing and authentication live in net/tcp.ts; this file and replies.ts
 * are the typed vocabulary. docs/protocol.md describes the same messages.
 */

/** A version orders the puts of one name: 13-digit milliseconds, a dash, 8 hex digits. Lexical order is time order. */
export const Version = z.string().regex(/^\d{13}-[0-9a-f]{8}$/)
export type Version = z.infer<typeof Version>

export const Hex64 = z.string().regex(/^[0-9a-f]{64}$/)

/** Bytes of a chunk's checksum (CRC-32) on the wire; in manifests it is written as 8 hex digits. */
export const CHUNK_CHECKSUM_BYTES = 4
const ChunkChecksum = z.string().regex(/^[0-9a-f]{8}$/)
/** Most entries one listing page may hold. */
export const MAX_PAGE = 10_000
/** Most parts an arc may be compared in (see ring/arcs.ts). */
export const MAX_DIGEST_PARTS = 4096
/** A position on the ring: 64 bits as 16 hex digits. */
const Position = z.string().regex(/^[0-9a-f]{16}$/)
/** Positions p with from < p ≤ to, clockwise; from === to is the whole ring. */
const WireArc = z.object({ from: Position, to: Position })
/** Names are validated in full by files/names.ts; the wire only bounds them. */
export const WireName = z.string().min(1).max(4096)

/** How a file is cut: the same for every fragment of one version. */
export const Coding = z.object({
  k: z.number().int().min(1).max(64),
  m: z.number().int().min(0).max(64),
  stripeBytes: z
    .number()
    .int()
    .min(64)
    .max(64 * 1024 * 1024),
})
export type Coding = z.infer<typeof Coding>

/** What a holder stores beside each fragment: enough to rebuild the party's index from holders alone. */
export const Manifest = z.object({
  name: WireName,
  version: Version,
  size: z.number().int().min(0),
  hash: Hex64,
  created: z.number().int().min(0),
  coding: Coding,
  index: z.number().int().min(0).max(127),
  /** CRC-32 of each chunk (one chunk per stripe), hex. */
  chunks: z.array(ChunkChecksum),
})
export type Manifest = z.infer<typeof Manifest>

export const FragmentRef = z.object({
  index: z.number().int().min(0).max(127),
  holder: GuestId,
  /** sha256 over the fragment's chunk checksums: pins the fragment's exact contents. */
  digest: Hex64,
})
export type FragmentRef = z.infer<typeof FragmentRef>

/** Most bytes of user metadata (x-amz-meta-* names and values) one object may carry: S3's own limit. */
export const MAX_USER_META_BYTES = 2048

/**
 * What an object carries beside its bytes (put through the S3 API): the
 * headers it is served with, its user metadata, the ETag S3 clients check
 * (MD5 of the body, or MD5 of the parts' MD5s then "-N" for a multipart
 * object) and the checksums the uploader asked for (base64, as S3 gives them).
 */
export const ObjectMeta = z.object({
  etag: z
    .string()
    .regex(/^[0-9a-f]{32}(-\d{1,5})?$/)
    .optional(),
  contentType: z.string().max(1024).optional(),
  cacheControl: z.string().max(1024).optional(),
  contentDisposition: z.string().max(1024).optional(),
  contentEncoding: z.string().max(256).optional(),
  contentLanguage: z.string().max(256).optional(),
  expires: z.string().max(256).optional(),
  user: z.record(z.string().max(MAX_USER_META_BYTES), z.string().max(MAX_USER_META_BYTES)).optional(),
  checksums: z
    .object({ crc32: z.string().max(64), crc32c: z.string().max(64), crc64nvme: z.string().max(64), sha1: z.string().max(64), sha256: z.string().max(64) })
    .partial()
    .optional(),
})
export type ObjectMeta = z.infer<typeof ObjectMeta>

/** Most parts one object may be made of (S3's limit). */
export const MAX_PARTS = 10_000

/** One part of a file made of parts: another file (at one version) whose bytes come next. */
export interface PartRef {
  name: string
  version: Version
  size: number
}

/**
 * The parts of a file made of parts, compactly: the parts' names share a
 * beginning (`under`), written once; each part is [the rest of its name, its
 * version, its size]. Ten thousand parts (S3's limit) take about 450 KB, well
 * inside a request frame.
 */
export const PartList = z.object({
  under: WireName,
  each: z
    .array(z.tuple([z.string().max(256), Version, z.number().int().min(0)]))
    .min(1)
    .max(MAX_PARTS),
})
export type PartList = z.infer<typeof PartList>

/** The parts a record names, in order (none for a file with fragments of its own). */
export function partsOf(record: { parts?: PartList | undefined }): PartRef[] {
  const list = record.parts
  return list ? list.each.map(([rest, version, size]) => ({ name: list.under + rest, version, size })) : []
}

/** `parts` as a PartList: their names' common beginning written once. */
export function partList(parts: readonly PartRef[]): PartList {
  let under = parts[0]?.name ?? ''
  for (const p of parts) while (!p.name.startsWith(under)) under = under.slice(0, -1)
  return { under, each: parts.map((p) => [p.name.slice(under.length), p.version, p.size]) }
}

/** A tracker's record of one file (watchMyPint writes it, wheresMyPint reads it). A deleted file keeps a tombstone. */
export const FileRecord = z.object({
  name: WireName,
  version: Version,
  /** Bumped each time the fragments of this version move (recovery, rebalance): same version, higher revision wins. */
  revision: z.number().int().min(0),
  deleted: z.boolean(),
  size: z.number().int().min(0),
  hash: z.union([Hex64, z.literal('')]),
  created: z.number().int().min(0),
  coding: Coding,
  fragments: z.array(FragmentRef),
  /** Absent for a file put through the native API without any. */
  meta: ObjectMeta.optional(),
  /**
   * A file made of parts (an S3 multipart upload): its bytes are those of these files, in order, and it has no
   * fragments of its own (each part is an ordinary file, coded, placed and repaired as any other). `hash` is
   * still the sha256 of the whole.
   */
  parts: PartList.optional(),
})
export type FileRecord = z.infer<typeof FileRecord>

/**
 * A record as a listing shows it: what a page needs of each file, without the fragment digests and the stripe
 * size (a page carries thousands of records, and each guest's page is read and checked by the peer merging them).
 */
export const ListedRecord = FileRecord.pick({ name: true, version: true, revision: true, deleted: true, size: true, hash: true, created: true }).extend({
  k: Coding.shape.k,
  m: Coding.shape.m,
  /** [fragment index, holder] for each fragment. */
  holders: z.array(z.tuple([z.number().int().min(0).max(127), GuestId])),
  /** The S3 ETag, when the file has one: a listing of objects shows it. */
  etag: ObjectMeta.shape.etag,
  /** How many parts a file made of parts has (see FileRecord.parts). */
  parts: z.number().int().min(1).max(MAX_PARTS).optional(),
})
export type ListedRecord = z.infer<typeof ListedRecord>

/** A name as a listing page gives it when the asker lists it whole from another guest: which version this guest has. */
export const BriefEntry = z.tuple([WireName, Version, FileRecord.shape.revision, z.boolean()])
export type BriefEntry = z.infer<typeof BriefEntry>

export const HeldFragment = z.object({
  name: WireName,
  version: Version,
  index: z.number().int(),
  size: z.number().int(),
  bytes: z.number().int(),
  digest: Hex64,
  coding: Coding,
  /** The file's content hash and creation time, from the manifest: enough to rebuild a lost tracker record. */
  hash: Hex64,
  created: z.number().int().min(0),
  /** When this holder made the fragment durable (ms): young unreferenced fragments may belong to a put still running. */
  stored: z.number().int().min(0),
})
export type HeldFragment = z.infer<typeof HeldFragment>

/** What the sender of a fragment vouches for, authenticated: the file's size, hash and creation time, and the fragment's digest. */
export const HoldTrailer = z.object({
  size: z.number().int().min(0),
  hash: Hex64,
  created: z.number().int().min(0),
  digest: Hex64,
})
export type HoldTrailer = z.infer<typeof HoldTrailer>

/** Most records one `recordsIn` reply carries: a part of a very large arc is read over several. */
export const MAX_RECORDS_PER_REPLY = 1000
/** Most calls one batch may carry. */
export const MAX_BATCH = 64
/**
 * Most fragment bytes the stashes of one batch may carry (its chunks are all read before any call is served),
 * and most its fetches and wheres may return (their bytes follow the reply, in the order of the calls).
 */
export const MAX_BATCH_BYTES = 1024 * 1024

const base = { v: z.literal(1), ts: z.number().int(), nonce: z.string().regex(/^[0-9a-f]{16}$/) }

const StashCall = z.object({
  op: z.literal('stash'),
  name: WireName,
  version: Version,
  index: z.number().int().min(0).max(127),
  coding: Coding,
  trailer: HoldTrailer,
})
const WatchCall = z.object({ op: z.literal('watch'), record: FileRecord, exclusive: z.boolean().optional() })
const WhereCall = z.object({
  op: z.literal('where'),
  name: WireName,
  intent: Version.optional(),
  /**
   * A get of a small file: the tracker also sends a fragment it holds of the version it records, when the file
   * is one stripe and the fragment at most this many bytes (its bytes follow the reply, as a fetch's do).
   */
  fragmentUpTo: z.number().int().min(1).max(MAX_BATCH_BYTES).optional(),
})
const FetchCall = z.object({
  op: z.literal('fetch'),
  name: WireName,
  version: Version,
  index: z.number().int().min(0).max(127),
  fromChunk: z.number().int().min(0),
})

/** The calls a batch may carry: the small ones a burst of puts and gets makes to every guest (a fetch of a whole small fragment). */
export const BatchedCall = z.discriminatedUnion('op', [StashCall, WatchCall, WhereCall, FetchCall])
export type BatchedCall = z.infer<typeof BatchedCall>

export const PintRequest = z.discriminatedUnion('op', [
  /** holdMyPint: store fragment `index` of (name, version); chunks follow, then a HoldTrailer. */
  z.object({ ...base, op: z.literal('hold'), name: WireName, version: Version, index: z.number().int().min(0).max(127), coding: Coding }),
  /**
   * holdMyPint for a small fragment, sent whole: one chunk (u32 length | CRC-32 | bytes; a zero length for an
   * empty file) follows the request, and the holder keeps it in its manifest table instead of a file.
   */
  StashCall.extend(base),
  /** Read a stored fragment from chunk `fromChunk` on. */
  FetchCall.extend(base),
  /**
   * Delete the fragments of one version (all indices, or one). With `storedBy`, only copies stored no later than
   * that (ms since the epoch): a census drops the copy it saw, never one written again since.
   */
  z.object({
    ...base,
    op: z.literal('drop'),
    name: WireName,
    version: Version,
    index: z.number().int().min(0).max(127).optional(),
    storedBy: z.number().int().min(0).optional(),
  }),
  /** What this peer holds: everything, or only the selected parts of an arc (those whose digests differed). */
  z.object({
    ...base,
    op: z.literal('inventory'),
    arc: WireArc.optional(),
    parts: z.number().int().min(1).max(MAX_DIGEST_PARTS).optional(),
    select: z.array(z.number().int().min(0).max(MAX_DIGEST_PARTS)).max(MAX_DIGEST_PARTS).optional(),
  }),
  /** Anti-entropy: the digest of what this peer holds in each part of an arc, and its totals. */
  z.object({ ...base, op: z.literal('digests'), arc: WireArc, parts: z.number().int().min(1).max(MAX_DIGEST_PARTS) }),
  /** Anti-entropy between trackers: the digest of the records this tracker keeps in each part of an arc. */
  z.object({ ...base, op: z.literal('recordDigests'), arc: WireArc, parts: z.number().int().min(1).max(MAX_DIGEST_PARTS) }),
  /** The records this tracker keeps in one part of an arc (one whose digests differed). */
  z.object({
    ...base,
    op: z.literal('recordsIn'),
    arc: WireArc,
    parts: z.number().int().min(1).max(MAX_DIGEST_PARTS),
    part: z.number().int().min(0).max(MAX_DIGEST_PARTS),
    /** Records of the part already taken (earlier replies): the reply starts after them. */
    skip: z.number().int().min(0).optional(),
  }),
  /**
   * watchMyPint: record where a file's fragments are (newer versions win).
   * `exclusive` marks a change to the same version (a repair or a move) sent
   * to the primary tracker, which decides it: the first change of a revision
   * wins there, and a later one derived from the same revision is refused.
   */
  WatchCall.extend(base),
  /**
   * wheresMyPint: the newest record of a name. A put starting sends its version as `intent`: the
   * tracker remembers it for a while, so a put that finishes first learns that a newer one began.
   */
  WhereCall.extend(base),
  /**
   * One page of the records this tracker keeps, in UTF-8 byte order of their names: names under `prefix` after
   * `after` (after every name under it when `skip`), names with `delimiter` past the prefix folded into common prefixes.
   */
  z.object({
    ...base,
    op: z.literal('page'),
    prefix: z.string().max(4096),
    delimiter: z.string().max(64),
    after: z.string().max(4096),
    skip: z.boolean(),
    limit: z.number().int().min(1).max(MAX_PAGE),
    /** Names whose positions lie in this arc are listed whole, the others as brief entries; all whole when absent. */
    whole: WireArc.optional(),
  }),
  /** The health of the files in an arc, from the receiver's records and a census of the arc by digest (GET /health/party). */
  z.object({ ...base, op: z.literal('health'), arc: WireArc }),
  /** Tracker handoff: records the receiver is now a tracker of (each taken as a watch; newer wins). */
  z.object({ ...base, op: z.literal('sync'), records: z.array(FileRecord).max(1000) }),
  /**
   * Several small calls in one frame, answered in one reply (a burst of puts makes many to every guest): each
   * stash's chunk follows the frame, in the order of the stashes. Each call is answered as it would be alone.
   */
  z.object({ ...base, op: z.literal('batch'), calls: z.array(BatchedCall).min(1).max(MAX_BATCH) }),
])
export type PintRequest = z.infer<typeof PintRequest>
export type PintOp = PintRequest['op']
type Base = 'v' | 'ts' | 'nonce'
/** A request as its sender writes it; dial() adds the version, time and nonce. */
export type PintRequestBody = PintRequest extends infer R ? (R extends PintRequest ? Omit<R, Base> : never) : never
