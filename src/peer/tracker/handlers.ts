import type { PintChannel } from '../net/index.ts'
import { checkName, type PintRequest } from '../protocol/index.ts'
import type { TrackerStore } from './tracker-store.ts'

type Req<T extends PintRequest['op']> = Extract<PintRequest, { op: T }>

/** watchMyPint, tracker side. */
export async function serveWatch(req: Req<'watch'>, channel: PintChannel, trackers: TrackerStore): Promise<void> {
  checkName(req.record.name)
  const result = trackers.watch(req.record, { exclusive: req.exclusive })
  // Answered once committed: a put acknowledged to its client survives a crash of every tracker.
  await trackers.committed()
  await channel.reply({ ok: true, ...result })
}

/** wheresMyPint, tracker side. */
export async function serveWhere(req: Req<'where'>, channel: PintChannel, trackers: TrackerStore): Promise<void> {
  const pending = req.intent === undefined ? undefined : trackers.intend(req.name, req.intent)
  await channel.reply({ ok: true, record: trackers.get(req.name) ?? null, pending: pending ?? null })
}

/** One page of the listing, from this tracker's index in order. */
export async function servePage(req: Req<'page'>, channel: PintChannel, trackers: TrackerStore): Promise<void> {
  const { prefix, delimiter, after, skip, limit } = req
  await channel.reply({ ok: true, ...trackers.page({ prefix, delimiter, after, skip, limit }) })
}

/** Tracker handoff, receiving side: each record is taken as a watch (newer wins), so a stale push changes nothing. */
export async function serveSync(req: Req<'sync'>, channel: PintChannel, trackers: TrackerStore): Promise<void> {
  let accepted = 0
  for (const record of req.records) {
    checkName(record.name)
    if (trackers.watch(record).accepted) accepted++
  }
  // The sender forgets what it handed off once answered: the records must be committed here first.
  await trackers.committed()
  await channel.reply({ ok: true, accepted })
}
