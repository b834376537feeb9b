import { checkName, type FileRecord, MAX_RECORDS_PER_REPLY, type PintReply, type PintRequest, type PintRequestBody } from '../protocol/index.ts'
import type { TrackerStore } from './tracker-store.ts'

type Body<T extends PintRequest['op']> = Extract<PintRequestBody, { op: T }>

/** watchMyPint, tracker side. */
export async function answerWatch(req: Body<'watch'>, trackers: TrackerStore): Promise<PintReply<'watch'>> {
  checkName(req.record.name)
  const result = trackers.watch(req.record, { exclusive: req.exclusive })
  // Answered once committed: a put acknowledged to its client survives a crash of every tracker.
  await trackers.committed()
  return { ok: true, ...result }
}

/** wheresMyPint, tracker side. */
export async function answerWhere(req: Body<'where'>, trackers: TrackerStore): Promise<PintReply<'where'>> {
  const pending = req.intent === undefined ? undefined : trackers.intend(req.name, req.intent)
  return { ok: true, record: trackers.get(req.name) ?? null, pending: pending ?? null }
}

/** One page of the listing, from this tracker's index in order. */
export async function answerPage(req: Body<'page'>, trackers: TrackerStore): Promise<PintReply<'page'>> {
  const { prefix, delimiter, after, skip, limit, whole } = req
  return { ok: true, ...trackers.page({ prefix, delimiter, after, skip, limit }, whole) }
}

/** Tracker handoff, receiving side: each record is taken as a watch (newer wins), so a stale push changes nothing. */
export async function answerSync(req: Body<'sync'>, trackers: TrackerStore): Promise<PintReply<'sync'>> {
  let accepted = 0
  for (const record of req.records) {
    checkName(record.name)
    if (trackers.watch(record).accepted) accepted++
  }
  // The sender forgets what it handed off once answered: the records must be committed here first.
  await trackers.committed()
  return { ok: true, accepted }
}

/** The digests of the records kept in each part of an arc: another tracker of the arc compares its own with them. */
export async function answerRecordDigests(req: Body<'recordDigests'>, trackers: TrackerStore): Promise<PintReply<'recordDigests'>> {
  return { ok: true, parts: trackers.digestsIn(req.arc, req.parts).encode() }
}

/**
 * The records kept in one part of an arc, MAX_RECORDS_PER_REPLY at a time after the first `skip`: another tracker
 * of the arc takes those newer than its own. (Records written between two replies may shift the count by a few:
 * one taken twice changes nothing, one missed shows in the next comparison of digests.)
 */
export async function answerRecordsIn(req: Body<'recordsIn'>, trackers: TrackerStore): Promise<PintReply<'recordsIn'>> {
  const records: FileRecord[] = []
  let partsBytes = 0
  for (const record of trackers.inParts(req.arc, req.parts, new Set([req.part]), req.skip)) {
    if (records.length === MAX_RECORDS_PER_REPLY || partsBytes > PARTS_BYTES_PER_REPLY) return { ok: true, records, more: true }
    records.push(record)
    // Records of files made of many parts are large: a reply holds a bounded amount of them.
    if (record.parts) partsBytes += JSON.stringify(record.parts).length
  }
  return { ok: true, records, more: false }
}

/** Bytes of part lists one recordsIn reply may carry (the rest follow in the next): far inside a reply frame. */
const PARTS_BYTES_PER_REPLY = 16 * 1024 * 1024

/** A tracker call this peer makes to itself, answered here as a remote guest would answer it. */
export function answerTracker(body: PintRequestBody, trackers: TrackerStore): Promise<unknown> | undefined {
  switch (body.op) {
    case 'watch':
      return answerWatch(body, trackers)
    case 'where':
      return answerWhere(body, trackers)
    case 'page':
      return answerPage(body, trackers)
    case 'sync':
      return answerSync(body, trackers)
    case 'recordDigests':
      return answerRecordDigests(body, trackers)
    case 'recordsIn':
      return answerRecordsIn(body, trackers)
    default:
      return undefined
  }
}
