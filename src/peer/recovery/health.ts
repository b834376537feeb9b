import type { FilesContext } from '../files/index.ts'
import type { GuestId, PintReply } from '../protocol/index.ts'
import { type Arc, domainName, type Level, primaryArc } from '../ring/index.ts'
import type { TrackerStore } from '../tracker/index.ts'
import { WALK_CHUNK } from './arc-walk.ts'
import { holdsFragments, readableHolders } from './assess.ts'
import { takeArcCensus } from './census.ts'
import { addRisk, countRisk, DomainView, noRisk, worstDomain } from './spread.ts'

export interface PartyHealth {
  guests: number
  /** Guests that every census heard (and whose arc somebody answered for). */
  answered: number
  files: number
  healthy: number
  degraded: number
  lost: number
  /** Up to 20 names of files below full redundancy, fewest usable fragments first. */
  worst: { name: string; usable: number; needed: number; total: number }[]
  /**
   * By failure domain level: how many domains the guests run in, and the
   * one whose loss alone would make the most readable files unreadable (0
   * files: losing any one of them loses nothing).
   */
  atRisk: Record<Level, DomainRisk>
}

export interface DomainRisk {
  domains: number
  /** The worst domain's name (undefined when no domain puts a file at risk). */
  worst: string | undefined
  files: number
}

export type ArcHealth = Omit<PintReply<'health'>, 'ok'>

/** How long the asker waits for an arc's tracker before also asking the next one (a frozen guest answers nothing). */
const HEDGE_MS = 1_000
const WORST = 20

const byMargin = (a: PartyHealth['worst'][number], b: PartyHealth['worst'][number]): number => a.usable - a.needed - (b.usable - b.needed)

/**
 * The health of the live files in `arc`, from this peer's records of them and a census by digest: what one
 * tracker answers for its part of `GET /health/party`. Read a chunk of the arc at a time (a census of each
 * stretch), so the answer holds ten thousand records however many the arc has. A quiet party costs one digest
 * per part and guest.
 */
export async function arcHealth(ctx: FilesContext, records: TrackerStore, arc: Arc, signal?: AbortSignal): Promise<ArcHealth> {
  const guests = ctx.roster.guests().map((g) => g.id)
  const present = new Set(guests)
  const out: ArcHealth = { files: 0, healthy: 0, degraded: 0, lost: 0, worst: [], silent: [] }
  const silent = new Set<GuestId>()
  const view = new DomainView(guests, (id) => ctx.roster.domainsOf(id))
  const risk = noRisk()
  for (const chunk of records.chunks(arc, WALK_CHUNK)) {
    // Records first, census second: every fragment a record names was durable before the census asked, and one
    // moved after the record was read is found at its new place (readableFragments looks at every live copy).
    const live = chunk.records.filter(holdsFragments)
    const census = await takeArcCensus(ctx.fragments, chunk.arc, live, guests, signal)
    for (const g of census.silent) silent.add(g)
    out.files += live.length
    for (const record of live) {
      const { k, m } = record.coding
      const holders = readableHolders(record, present, census)
      const usable = holders.length
      countRisk(risk, view, record, holders)
      if (usable >= k + m) out.healthy++
      else {
        if (usable >= k) out.degraded++
        else out.lost++
        out.worst.push({ name: record.name, usable, needed: k, total: k + m })
      }
    }
    out.worst = out.worst.sort(byMargin).slice(0, WORST)
  }
  out.silent = [...silent]
  out.atRisk = { region: [...risk[0]], zone: [...risk[1]], node: [...risk[2]] }
  return out
}

/**
 * The party's redundancy, `GET /health/party`: each guest answers for the
 * arc of names it is primary tracker of, and the sums are the party's. A
 * guest that does not answer at once is stood in for by the next tracker
 * of its arc, which holds replicas of the same records. A guest counts as
 * answering unless some census did not hear it (or nobody answered for
 * its arc). Nothing here reads a whole inventory or every record.
 */
export async function partyHealth(ctx: FilesContext, signal?: AbortSignal): Promise<PartyHealth> {
  const ids = ctx.roster.guests().map((g) => g.id)
  const unanswered = new Set<GuestId>()
  const sum: Omit<PartyHealth, 'atRisk'> = { guests: ids.length, answered: 0, files: 0, healthy: 0, degraded: 0, lost: 0, worst: [] }
  const risk = noRisk()
  const answers = await Promise.all(
    ids.map(async (id) => {
      const arc = primaryArc(ids, id)
      const answer = await firstAnswer(ctx.trackers.trackersAt(id, ids), (tracker, s) => ctx.trackers.arcHealth(tracker, arc, s), signal)
      // A guest that is merely slow is stood in for, not counted out: whoever answers lists the guests its census did not hear.
      if (!answer) unanswered.add(id)
      return answer?.value
    }),
  )
  for (const answer of answers) {
    if (!answer) continue
    for (const g of answer.silent) unanswered.add(g)
    sum.files += answer.files
    sum.healthy += answer.healthy
    sum.degraded += answer.degraded
    sum.lost += answer.lost
    sum.worst.push(...answer.worst)
    // A guest of an earlier release answers without it.
    if (answer.atRisk) addRisk(risk, [new Map(answer.atRisk.region), new Map(answer.atRisk.zone), new Map(answer.atRisk.node)])
  }
  sum.worst = sum.worst.sort(byMargin).slice(0, WORST)
  sum.answered = ids.filter((id) => !unanswered.has(id)).length
  const view = new DomainView(ids, (id) => ctx.roster.domainsOf(id))
  const level = (l: number): DomainRisk => {
    const worst = worstDomain(risk[l] as Map<string, number>)
    return { domains: new Set(ids.map((id) => view.pathOf(id)[l])).size, worst: worst && domainName(worst[0]), files: worst?.[1] ?? 0 }
  }
  return { ...sum, atRisk: { region: level(0), zone: level(1), node: level(2) } }
}

/**
 * Asks `candidates` in order, starting the next one when the last has not
 * answered within HEDGE_MS or has failed; the first answer wins and the
 * others are called off. Undefined when nobody answered.
 */
async function firstAnswer<T>(
  candidates: readonly GuestId[],
  ask: (candidate: GuestId, signal: AbortSignal) => Promise<T>,
  signal?: AbortSignal,
): Promise<{ value: T } | undefined> {
  const done = new AbortController()
  const onAbort = (): void => done.abort()
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    return await new Promise((resolve) => {
      let pending = 0
      let next = 0
      let timer: NodeJS.Timeout | undefined
      const start = (): void => {
        clearTimeout(timer)
        const candidate = candidates[next++]
        if (candidate === undefined || done.signal.aborted) {
          if (pending === 0) resolve(undefined)
          return
        }
        pending++
        timer = setTimeout(start, HEDGE_MS)
        ask(candidate, done.signal).then(
          (value) => {
            clearTimeout(timer)
            resolve({ value })
          },
          () => {
            pending--
            start()
          },
        )
      }
      start()
    })
  } finally {
    done.abort()
    signal?.removeEventListener('abort', onAbort)
  }
}
