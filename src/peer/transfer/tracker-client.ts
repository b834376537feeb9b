import { setImmediate as nextTurn } from 'node:timers/promises'
import type { z } from 'zod'
import { HousePartyError, isHousePartyError } from '../../shared/errors.ts'
import { delay } from '../../shared/lifecycle.ts'
import type { Roster } from '../membership/index.ts'
import { type CallBatcher, call, type DialOptions, withBytes } from '../net/index.ts'
import { type FileRecord, type GuestId, type Manifest, PageReply, PintReplies, type PintReply, type PintRequestBody, type Version } from '../protocol/index.ts'
import { type Arc, primaryArc, type RingId, successors, trackersOf } from '../ring/index.ts'
import { compareNames, compareRecords, guestLimit, listedOf, type MergedPage, mergePages, newestRecord, type Page, type PageQuery } from '../tracker/index.ts'

/** Answers a tracker call made to this very peer, as it would answer it over TCP; undefined for an op it does not answer. */
export type LocalTracker = (body: PintRequestBody) => Promise<unknown> | undefined

/** What the primary tracker decided of a change: `current` is the record it keeps. */
export interface Decided {
  won: boolean
  current: FileRecord
}

/** Records per sync request: keeps each request frame well under the 1 MiB request limit. */
const SYNC_BATCH = 200
/** And at most this many bytes of records (a file made of many parts has a large record): well inside a request frame. */
const SYNC_BATCH_BYTES = 512 * 1024

/** Records in batches of at most SYNC_BATCH records and SYNC_BATCH_BYTES (a larger record goes alone). */
export function syncBatches(records: readonly FileRecord[]): FileRecord[][] {
  const out: FileRecord[][] = []
  let batch: FileRecord[] = []
  let bytes = 0
  for (const record of records) {
    // Only a file made of parts can be large; the others' size is bounded well below this.
    const size = record.parts ? JSON.stringify(record).length : 1024
    if (batch.length > 0 && (batch.length >= SYNC_BATCH || bytes + size > SYNC_BATCH_BYTES)) {
      out.push(batch)
      batch = []
      bytes = 0
    }
    batch.push(record)
    bytes += size
  }
  if (batch.length > 0) out.push(batch)
  return out
}
type WhereBody = Extract<PintRequestBody, { op: 'where' }>

/** One tracker's answer to a where, and the bytes of the fragment it brought (asked for with `fragmentUpTo`). */
interface WhereAnswer {
  id: GuestId
  reply: PintReply<'where'>
  data?: Buffer
}

/** A fragment a tracker sent with its answer (a get of a small file): checked by the reader as a fetched one is. */
export interface Brought {
  holder: GuestId
  index: number
  manifest: Manifest
  data: Buffer
}

/** How often a where that nobody answered is asked again, and the first pause (it grows): about 2 s in all, a view change or two. */
const WHERE_RETRIES = 3
const WHERE_RETRY_MS = 300

/**
 * The asking side of watchMyPint / wheresMyPint. Every call goes to all of
 * a file's tracker replicas at once: a write lands everywhere it can, and a
 * read takes the newest answer, so one stale or dead replica changes nothing.
 */
export class TrackerClient {
  readonly #roster: Roster
  readonly #dial: DialOptions
  readonly #replicas: number
  readonly #local: LocalTracker | undefined
  readonly #batcher: CallBatcher | undefined

  /**
   * `local` answers the calls this peer makes to itself as one of the trackers, without a connection to itself;
   * `batcher` gathers the wheres and watches a burst of puts makes to one guest into fewer requests.
   */
  constructor(roster: Roster, dial: DialOptions, replicas: number, local?: LocalTracker, batcher?: CallBatcher) {
    this.#roster = roster
    this.#dial = dial
    this.#replicas = replicas
    this.#local = local
    this.#batcher = batcher
  }

  /** How many guests keep each record. */
  get replicas(): number {
    return this.#replicas
  }

  /** The trackers of `name` among the current guests, or among `among` (a party without a guest that is leaving); `count` to look further along the ring. */
  trackersOf(name: string, among: readonly GuestId[] = this.#roster.guests().map((g) => g.id), count = this.#replicas): GuestId[] {
    return trackersOf(among, name, count)
  }

  /** The trackers of the names at `position` (the guest there first): who can answer for an arc ending at it. */
  trackersAt(position: RingId, among: readonly GuestId[] = this.#roster.guests().map((g) => g.id)): GuestId[] {
    return successors(among, position, this.#replicas)
  }

  /**
   * One tracker's health of the files in `arc`. It takes a census of the arc to answer, which waits out a frozen
   * guest (the connect timeout for its digests, again for a listing): the first reply may take that long, not one.
   */
  async arcHealth(id: GuestId, arc: Arc, signal?: AbortSignal): Promise<PintReply<'health'>> {
    return this.#call(id, { op: 'health', arc }, PintReplies.health, signal, { connectTimeoutMs: this.#dial.connectTimeoutMs * 3 })
  }

  /** Tracker handoff: sends records to a guest that is now one of their trackers, in batches. Returns how many it took. */
  async sync(id: GuestId, records: readonly FileRecord[], signal?: AbortSignal): Promise<number> {
    let accepted = 0
    for (const batch of syncBatches(records)) accepted += (await this.#call(id, { op: 'sync', records: batch }, PintReplies.sync, signal)).accepted
    return accepted
  }

  /** What tracker `id` keeps of the records in each part of `arc`, as digests (anti-entropy between trackers). */
  async recordDigests(id: GuestId, arc: Arc, parts: number, signal?: AbortSignal): Promise<string[]> {
    return (await this.#call(id, { op: 'recordDigests', arc, parts }, PintReplies.recordDigests, signal)).parts
  }

  /** The records tracker `id` keeps in one part of `arc` (one whose digests differ from this peer's), a reply's worth at a time. */
  async *recordsIn(id: GuestId, arc: Arc, parts: number, part: number, signal?: AbortSignal): AsyncGenerator<FileRecord[]> {
    for (let skip = 0; ; ) {
      const reply = await this.#call(id, { op: 'recordsIn', arc, parts, part, skip }, PintReplies.recordsIn, signal)
      yield reply.records
      // A tracker of a version before paging answers the whole part at once, without `more`.
      if (reply.more !== true || reply.records.length === 0) return
      skip += reply.records.length
    }
  }

  /** wheresMyPint: the newest record any tracker replica has, or undefined if none knows the name. */
  async where(name: string, signal?: AbortSignal): Promise<FileRecord | undefined> {
    return (await this.#where(name, undefined, signal)).record
  }

  /**
   * wheresMyPint for a get: the newest record, and the fragments of it that
   * its trackers hold (each at most `fragmentUpTo` bytes, read whole), sent
   * with their answers so the get need not fetch them. Only fragments of the
   * version kept are returned; the reader checks each against the record.
   */
  async locate(name: string, fragmentUpTo: number | undefined, signal?: AbortSignal): Promise<{ record: FileRecord | undefined; brought: Brought[] }> {
    const { record, answers } = await this.#where(name, undefined, signal, fragmentUpTo)
    const brought = answers.flatMap(({ id, reply, data }) =>
      reply.fragment && data && record && reply.record?.version === record.version
        ? [{ holder: id, index: reply.fragment.index, manifest: reply.fragment.manifest, data }]
        : [],
    )
    return { record, brought }
  }

  /**
   * wheresMyPint for a put about to store `version`: the trackers remember
   * the intent, and say the newest version another put has announced.
   */
  async intend(name: string, version: Version, signal?: AbortSignal): Promise<{ record: FileRecord | undefined; pending: Version | undefined }> {
    return this.#where(name, version, signal)
  }

  /**
   * Asks a name's trackers. When the ring is moving (a guest leaving or
   * rejoining) they may not answer, or not have the record yet: then the
   * next successors are asked too (records are handed along the ring), and
   * if still nobody answers, the question is asked again a few times over
   * about two seconds, on the guest list as it is by then. A name its
   * trackers all say they do not know is asked of every other guest before
   * it is called missing (by a read): while records are still being handed to the
   * trackers of a new ring (several guests left at once), the record may
   * sit on a guest that tracked it a moment ago. A miss costs one request
   * per guest; a file that exists is never reported missing for that.
   */
  async #where(
    name: string,
    intent: Version | undefined,
    signal?: AbortSignal,
    fragmentUpTo?: number,
  ): Promise<{ record: FileRecord | undefined; pending: Version | undefined; answers: WhereAnswer[] }> {
    const body = { op: 'where' as const, name, ...(intent === undefined ? {} : { intent }), ...(fragmentUpTo === undefined ? {} : { fragmentUpTo }) }
    let count = 0
    for (let attempt = 0; ; attempt++) {
      const wide = this.trackersOf(name, undefined, 2 * this.#replicas)
      const trackers = wide.slice(0, this.#replicas)
      count = trackers.length
      let ok = await this.#ask(trackers, body, signal)
      const asked = new Set(trackers)
      const found = ok.some((a) => a.reply.record)
      if ((ok.length === 0 || (!found && ok.length < trackers.length)) && wide.length > trackers.length) {
        ok = [...ok, ...(await this.#ask(wide.slice(trackers.length), body, signal))]
        for (const id of wide) asked.add(id)
      }
      // (Reads only: a put of a new name, the usual case, must not ask every guest.)
      if (intent === undefined && ok.length > 0 && !ok.some((a) => a.reply.record)) {
        const rest = this.trackersOf(name, undefined, Number.MAX_SAFE_INTEGER).filter((id) => !asked.has(id))
        const more = rest.length > 0 ? await this.#ask(rest, body, signal) : []
        if (more.some((a) => a.reply.record)) ok = [...ok, ...more]
      }
      if (ok.length > 0) {
        let pending: Version | undefined
        for (const { reply } of ok) if (reply.pending && (pending === undefined || reply.pending > pending)) pending = reply.pending
        return { record: newestRecord(ok.map((a) => a.reply.record)), pending, answers: ok }
      }
      if (attempt >= WHERE_RETRIES || signal?.aborted) break
      await delay(WHERE_RETRY_MS * (attempt + 1), signal).catch(() => undefined)
    }
    throw new HousePartyError('ERR_NOT_ENOUGH_PEERS', `none of the ${count} trackers of ${JSON.stringify(name)} (nor their successors) answered`, {
      details: { trackers: count, reachable: 0 },
    })
  }

  async #ask(trackers: readonly GuestId[], body: WhereBody, signal?: AbortSignal): Promise<WhereAnswer[]> {
    const ask = async (id: GuestId): Promise<WhereAnswer> =>
      body.fragmentUpTo === undefined
        ? { id, reply: await this.#call(id, body, PintReplies.where, signal) }
        : { id, ...(await this.#whereForBytes(id, body, signal)) }
    const answers = await Promise.allSettled(trackers.map(ask))
    return answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []))
  }

  /** A where that may bring a fragment's bytes after its reply (this peer answers its own: it reads its fragments from its disk). */
  async #whereForBytes(id: GuestId, body: WhereBody, signal?: AbortSignal): Promise<{ reply: PintReply<'where'>; data?: Buffer }> {
    const maxBytes = body.fragmentUpTo ?? 0
    const answered = id === this.#roster.selfId ? this.#local?.(body) : undefined
    if (answered) return { reply: (await answered) as PintReply<'where'> }
    const address = this.#roster.addressOf(id)
    if (!address) throw new HousePartyError('ERR_GUEST_NOT_FOUND', `guest ${id} left the party`)
    if (!this.#batcher) {
      return call(address, body, PintReplies.where, { ...this.#dial, signal }, { afterReply: (reply, channel) => withBytes('where', reply, channel, maxBytes) })
    }
    try {
      return await this.#batcher.callForBytes(address, body, PintReplies.where, maxBytes, signal)
    } catch (err) {
      // A guest that predates fetches in batches closes the connection on such a batch: asked again, plainly.
      if (!isHousePartyError(err, 'ERR_TRANSFER_FAILED')) throw err
      return { reply: await this.#call(id, { op: 'where', name: body.name }, PintReplies.where, signal) }
    }
  }

  /** watchMyPint: sends `record` to every tracker replica; at least one must take it. */
  async watch(record: FileRecord, signal?: AbortSignal): Promise<PintReply<'watch'>[]> {
    const trackers = this.trackersOf(record.name)
    const answers = await Promise.allSettled(trackers.map((id) => this.#call(id, { op: 'watch', record }, PintReplies.watch, signal)))
    const ok = answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []))
    if (ok.length === 0) {
      throw new HousePartyError('ERR_NOT_ENOUGH_PEERS', `none of the ${trackers.length} trackers of ${JSON.stringify(record.name)} took the record`, {
        details: { trackers: trackers.length, reachable: 0 },
      })
    }
    return ok
  }

  /**
   * watchMyPint for a change to a version the trackers already know (a
   * repair or a move): the primary tracker decides it, so of two changes
   * racing from the same revision exactly one wins, and the loser knows
   * before it drops anything. Then the other replicas are told. Without the
   * primary the change waits: it is refused with ERR_NOT_ENOUGH_PEERS.
   */
  async change(record: FileRecord, signal?: AbortSignal): Promise<Decided> {
    const [primary, ...others] = this.trackersOf(record.name)
    if (!primary) throw new HousePartyError('ERR_NOT_ENOUGH_PEERS', 'the party has no guests to track files')
    let decided: PintReply<'watch'>
    try {
      decided = await this.#call(primary, { op: 'watch', record, exclusive: true }, PintReplies.watch, signal)
    } catch (err) {
      throw new HousePartyError('ERR_NOT_ENOUGH_PEERS', `the primary tracker of ${JSON.stringify(record.name)} did not answer: ${(err as Error).message}`, {
        details: { trackers: others.length + 1, reachable: 0 },
      })
    }
    // A resend of a change the primary already took counts as won.
    if (!decided.accepted && compareRecords(decided.current, record) !== 0) return { won: false, current: decided.current }
    await Promise.allSettled(others.map((id) => this.#call(id, { op: 'watch', record }, PintReplies.watch, signal)))
    return { won: true, current: record }
  }

  /**
   * One page of the party's listing. Every guest answers the first entries of its own index (about as many as its
   * share of the page needs: see guestLimit), whole for the names it is primary tracker of and as brief entries
   * (name, version, revision) for the rest, and the pages are merged (newest per name, each name once): the page
   * carries each record once, not once per replica. A name whose newest version came only brief (its primary did
   * not answer, or holds an older record) is read from its trackers. A guest that does not answer is counted: its
   * names are still listed from the other trackers of each, unless they are all silent.
   */
  async listPage(query: PageQuery, signal?: AbortSignal): Promise<MergedPage & { asked: number; answered: number }> {
    const guests = this.#roster.guests()
    const ids = guests.map((g) => g.id)
    const limit = guestLimit(query.limit, guests.length, this.#replicas, query.delimiter)
    const ask = (id: GuestId): Promise<Page> => this.#call(id, { op: 'page', ...query, limit, whole: primaryArc(ids, id) }, PageReply, signal)
    // This peer reads its own page synchronously, in the call. It waits for the next turn of the event loop, by which
    // the requests to the other guests have left (a request is flushed once its call's first await resolves), so they
    // read theirs meanwhile instead of after it.
    const self = this.#roster.selfId
    const answers = await Promise.allSettled(ids.map((id) => (id === self ? nextTurn().then(() => ask(id)) : ask(id))))
    const pages = answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []))
    const merged = mergePages(pages, query)
    if (merged.unresolved.length > 0) {
      const read = await Promise.all(merged.unresolved.map((name) => this.where(name, signal)))
      const live = read.flatMap((r) => (r && !r.deleted ? [listedOf(r)] : []))
      merged.records = [...merged.records, ...live].sort((a, b) => compareNames(a.name, b.name))
      merged.unresolved = []
    }
    return { ...merged, asked: guests.length, answered: pages.length }
  }

  /** One call to a tracker (this peer answers its own); `dial` overrides the timeouts of a call that takes longer. */
  #call<S extends z.ZodType>(id: GuestId, body: PintRequestBody, schema: S, signal?: AbortSignal, dial?: Partial<DialOptions>): Promise<z.infer<S>> {
    const answered = id === this.#roster.selfId ? this.#local?.(body) : undefined
    if (answered) return answered as Promise<z.infer<S>>
    const address = this.#roster.addressOf(id)
    if (!address) return Promise.reject(new HousePartyError('ERR_GUEST_NOT_FOUND', `guest ${id} left the party`))
    // A record of a file made of parts may be hundreds of KB: it travels in a request of its own, never in a batch.
    const batchable = body.op === 'where' || (body.op === 'watch' && body.record.parts === undefined)
    if (this.#batcher && !dial && batchable) return this.#batcher.call(address, body, schema, signal)
    return call(address, body, schema, { ...this.#dial, ...dial, signal })
  }
}
