import { randomBytes } from 'node:crypto'
import type { FileRecord, Version } from '../protocol/index.ts'
import { compareRecords } from '../tracker/index.ts'
import type { FilesContext } from './context.ts'

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
  if (superseded) void ctx.fragments.drop(record, record.fragments)
  for (const old of replaced.values()) void ctx.fragments.drop(old, old.fragments)
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
