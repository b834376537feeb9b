import { randomBytes } from 'node:crypto'
import { mapLimited } from '../../shared/concurrency.ts'
import { type FileRecord, type ObjectMeta, partsOf, type Version } from '../protocol/index.ts'
import { compareRecords } from '../tracker/index.ts'
import type { FilesContext } from './context.ts'

export interface PutOptions {
  signal?: AbortSignal
  /** The size, when known up front (Content-Length): placement balances on it. */
  sizeHint?: number
  /**
   * Called once the whole body has been read (its size and sha256 known), before the version is recorded:
   * returns what the record carries beside the bytes (the S3 layer's ETag and headers), or throws to fail
   * the put (a body that does not match a digest its client sent) so that nothing is recorded.
   */
  seal?: (body: { size: number; hash: string; md5?: string }) => ObjectMeta | undefined
  /** Hash the body with MD5 too (off the event loop for a streamed put), and give it to `seal`: the S3 ETag. */
  md5?: boolean
}

export interface PutResult {
  name: string
  version: Version
  size: number
  hash: string
  /**
   * False when another put of the name won: a newer version was recorded, or
   * a put that began after this one is under way (this version is stored and
   * readable until that one is recorded).
   */
  current: boolean
}

/** A version after `after` (if given) and not before `now`: versions of a name only go forward. */
export function nextVersion(now: number, after?: Version): Version {
  const floor = after ? Number(after.slice(0, 13)) + 1 : 0
  return `${String(Math.max(Math.trunc(now), floor)).padStart(13, '0')}-${randomBytes(4).toString('hex')}`
}

export interface Recorded {
  /** A newer version was recorded first: this one's fragments are being dropped. */
  superseded: boolean
  /** This version is the one the trackers keep, and no later put of the name is under way. */
  current: boolean
}

/**
 * watchMyPint for a new version whose fragments are all durable. When no
 * tracker takes it, its fragments are dropped; when a newer version won,
 * they go too; the version it replaced loses its fragments.
 */
export async function recordVersion(ctx: FilesContext, record: FileRecord, signal?: AbortSignal): Promise<Recorded> {
  let replies: Awaited<ReturnType<FilesContext['trackers']['watch']>>
  try {
    replies = await ctx.trackers.watch(record, signal)
  } catch (err) {
    await ctx.fragments.drop(record, record.fragments)
    throw err
  }
  const superseded = replies.some((r) => compareRecords(r.current, record) > 0)
  const replaced = new Map<string, FileRecord>()
  for (const r of replies) if (r.replaced && r.replaced.version !== record.version) replaced.set(r.replaced.version, r.replaced)
  if (superseded) void releaseVersion(ctx, record).catch(() => undefined)
  for (const old of replaced.values()) void releaseVersion(ctx, old).catch(() => undefined)
  // A put of the name that began after this one will replace it: this one did not win.
  const overtaken = replies.some((r) => r.newer === true)
  return { superseded, current: !superseded && !overtaken }
}

/**
 * Picks this put's version and announces it to the name's trackers: above
 * what they record and above any put of the name already announced, so the
 * put that starts last is the one that stays. Usually one round trip; a
 * second when another put of the name announced a version above ours.
 */
export async function announce(ctx: FilesContext, name: string, signal?: AbortSignal): Promise<Version> {
  let version = nextVersion(ctx.clock.now())
  for (let attempt = 1; ; attempt++) {
    const floor = floorOf(await ctx.trackers.intend(name, version, signal))
    if (mayKeep(version, floor, attempt)) return version
    version = nextVersion(ctx.clock.now(), floor)
  }
}

/** The version a new put of a name must be above: the newest the trackers recorded or heard announced. */
export function floorOf(known: { record: FileRecord | undefined; pending: Version | undefined }): Version | undefined {
  const { record, pending } = known
  return [record?.version, pending].reduce<Version | undefined>((a, b) => (b !== undefined && (a === undefined || b > a) ? b : a), undefined)
}

/** Whether a put may go on with `version` after `attempt` announcements; after a few rounds of racing puts it goes ahead (the trackers still keep only the newest). */
export function mayKeep(version: Version, floor: Version | undefined, attempt: number): boolean {
  return floor === undefined || version > floor || attempt >= ANNOUNCE_ATTEMPTS
}

const ANNOUNCE_ATTEMPTS = 3

const PARTS_RELEASED_AT_ONCE = 16

/**
 * Gives up what a version stored once a newer version (or a tombstone)
 * replaced it: its fragments or, for a file made of parts, the part files
 * (each removed only while it is still the version the file named).
 */
export async function releaseVersion(ctx: FilesContext, record: FileRecord, signal?: AbortSignal): Promise<void> {
  if (!record.parts) {
    await ctx.fragments.drop(record, record.fragments)
    return
  }
  // A few at a time: an object may be made of thousands of parts.
  await mapLimited(partsOf(record), PARTS_RELEASED_AT_ONCE, async (part) => {
    const current = await ctx.trackers.where(part.name, signal)
    if (current && !current.deleted && current.version === part.version) await writeTombstone(ctx, current, signal)
  })
}

/** Deletes `record`'s file: a tombstone (a newer, deleted version) on its trackers, then what the versions it replaced stored. */
export async function writeTombstone(ctx: FilesContext, record: FileRecord, signal?: AbortSignal): Promise<Version> {
  const { parts: _parts, meta: _meta, ...rest } = record
  const tombstone: FileRecord = {
    ...rest,
    version: nextVersion(ctx.clock.now(), record.version),
    revision: 0,
    deleted: true,
    size: 0,
    hash: '',
    created: ctx.clock.now(),
    fragments: [],
  }
  const replies = await ctx.trackers.watch(tombstone, signal)
  const replaced = new Map<string, FileRecord>([[record.version, record]])
  for (const r of replies) if (r.replaced && !r.replaced.deleted) replaced.set(r.replaced.version, r.replaced)
  await Promise.all([...replaced.values()].map((old) => releaseVersion(ctx, old, signal)))
  return tombstone.version
}
