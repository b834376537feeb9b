import { HousePartyError } from '../../shared/errors.ts'
import type { BriefEntry, ListedRecord } from '../protocol/index.ts'
import type { ScannedRow } from './record-table.ts'
import { compareRevisions } from './records.ts'

/**
 * Paged, ordered listing. Names are ordered by their UTF-8 bytes (as S3
 * orders keys, and as SQLite's default collation compares TEXT), so every
 * guest and the peer merging their pages agree on one order.
 */
export interface PageQuery {
  /** Only names that start with it. */
  prefix: string
  /** When set, names with it after the prefix are folded into one common prefix (up to and including it). */
  delimiter: string
  /** Start after this name (or common prefix); '' starts at the beginning. */
  after: string
  /** `after` is a common prefix: every name under it was listed already. */
  skip: boolean
  limit: number
}

/**
 * One guest's page: names (tombstones too, so a stale live record elsewhere
 * loses to them) and common prefixes, in order. A name is either listed
 * whole (`records`) or, where the asker wants only which version this guest
 * has (it lists the name whole from the name's primary tracker), as a
 * `brief` entry.
 */
export interface Page {
  records: ListedRecord[]
  /** Absent from a guest that predates brief entries: it lists every name whole. */
  brief?: BriefEntry[]
  prefixes: string[]
  /** More entries follow the last one of this page. */
  truncated: boolean
}

/** Reads rows in name order from `from` on (`from` itself only when `inclusive`). */
export type Scan = (from: string, inclusive: boolean) => Iterable<ScannedRow>

/** UTF-16 code units ordered as code points (UTF-8 byte order): a surrogate (a code point above U+FFFF) sorts after U+E000–U+FFFF. */
const codePointOrder = (unit: number): number => (unit >= 0xd800 && unit <= 0xdfff ? unit + 0x2000 : unit >= 0xe000 ? unit - 0x800 : unit)

export function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return codePointOrder(x) - codePointOrder(y)
  }
  return a.length - b.length
}

/** The least string above every string that starts with `prefix` (undefined when none is: the prefix is all U+10FFFF). */
export function prefixEnd(prefix: string): string | undefined {
  const points = [...prefix].map((c) => c.codePointAt(0) as number)
  while (points.length > 0) {
    const last = points.pop() as number
    if (last < 0x10ffff) {
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1
      return String.fromCodePoint(...points, next)
    }
  }
  return undefined
}

/** Where a page starts: after the previous page's last entry, and never before the prefix. */
function startOf(q: PageQuery): { from: string; inclusive: boolean } | undefined {
  if (q.after !== '' && q.skip) {
    const end = prefixEnd(q.after)
    if (end === undefined) return undefined
    return compareNames(end, q.prefix) >= 0 ? { from: end, inclusive: true } : { from: q.prefix, inclusive: true }
  }
  if (q.after !== '' && compareNames(q.after, q.prefix) >= 0) return { from: q.after, inclusive: false }
  return { from: q.prefix, inclusive: true }
}

/** The common prefix `name` folds into, if any. */
function commonPrefix(name: string, q: Pick<PageQuery, 'prefix' | 'delimiter'>): string | undefined {
  if (q.delimiter === '') return undefined
  const at = name.indexOf(q.delimiter, q.prefix.length)
  return at < 0 ? undefined : name.slice(0, at + q.delimiter.length)
}

/**
 * One guest's page, read from its index in order: at most `limit` entries,
 * jumping over everything under a common prefix once it is listed, so a page
 * reads about as many records as it returns.
 */
export function pageOf(scan: Scan, q: PageQuery): Page {
  const brief: BriefEntry[] = []
  const page: Page = { records: [], brief, prefixes: [], truncated: false }
  let cursor = startOf(q)
  const full = (): boolean => page.records.length + brief.length + page.prefixes.length >= q.limit
  while (cursor) {
    const at: { from: string; inclusive: boolean } = cursor
    cursor = undefined
    for (const row of scan(at.from, at.inclusive)) {
      if (!row.name.startsWith(q.prefix)) return page
      const common = commonPrefix(row.name, q)
      // A tombstone under a common prefix does not make the prefix show: only a live name does.
      if (common !== undefined && row.deleted) continue
      if (full()) {
        page.truncated = true
        return page
      }
      if (common === undefined) {
        if (row.listed) page.records.push(row.listed)
        else brief.push([row.name, row.version, row.revision, row.deleted])
        continue
      }
      page.prefixes.push(common)
      const end = prefixEnd(common)
      if (end !== undefined) cursor = { from: end, inclusive: true }
      break
    }
  }
  return page
}

/** Which of two replicas' records of a name is newer: by version, then revision, then (a tie of two moves) their holders. */
function compareListed(a: ListedRecord, b: ListedRecord): number {
  const byVersion = compareRevisions(a, b)
  if (byVersion !== 0) return byVersion
  const n = Math.max(a.holders.length, b.holders.length)
  for (let i = 0; i < n; i++) {
    const x = a.holders[i]
    const y = b.holders[i]
    if (!x || !y) return x ? 1 : -1
    if (x[0] !== y[0]) return x[0] - y[0]
    if (x[1] !== y[1]) return x[1] > y[1] ? 1 : -1
  }
  return 0
}

export interface MergedPage {
  /** Live files only, each from the newest record any guest listed whole. */
  records: ListedRecord[]
  /**
   * Live names whose newest version only came as brief entries (their primary
   * tracker did not answer, or holds an older record): the asker reads these
   * records from the names' trackers. In name order.
   */
  unresolved: string[]
  prefixes: string[]
  truncated: boolean
  /** Where the next page starts, when `truncated`. */
  next?: { after: string; skip: boolean }
}

/** The newest entry of a name so far: a whole record, or only a brief one. */
type Newest = { whole: ListedRecord } | { brief: BriefEntry }

/** Whether `entry` is newer than what is known of its name; a whole record wins a tie with a brief entry. */
function newer(entry: Newest, known: Newest | undefined): boolean {
  if (!known) return true
  const a = 'whole' in entry ? entry.whole : { version: entry.brief[1], revision: entry.brief[2] }
  const b = 'whole' in known ? known.whole : { version: known.brief[1], revision: known.brief[2] }
  const byVersion = compareRevisions(a, b)
  if (byVersion !== 0) return byVersion > 0
  if ('whole' in entry && 'whole' in known) return compareListed(entry.whole, known.whole) > 0
  return 'whole' in entry && !('whole' in known)
}

/** The last entry of a page, in name order: the page says nothing of the names after it. */
function lastOf(page: Page): string | undefined {
  const lasts = [page.records.at(-1)?.name, page.brief?.at(-1)?.[0], page.prefixes.at(-1)].filter((x): x is string => x !== undefined)
  return lasts.sort(compareNames).at(-1)
}

/**
 * The party's page from the guests' pages: the newest record per name wins
 * (a replica may be stale), each name and prefix appears once, and the page
 * holds the first `limit` entries of them all, up to the first name a
 * truncated guest page did not reach (after it, that guest's names are
 * unknown; before it, every guest has said all it has).
 */
export function mergePages(pages: readonly Page[], q: PageQuery): MergedPage {
  const start = startOf(q)
  let bound: string | undefined
  for (const page of pages) {
    const last = page.truncated ? lastOf(page) : undefined
    if (last !== undefined && (bound === undefined || compareNames(last, bound) < 0)) bound = last
  }
  const inRange = (key: string): boolean => {
    if (!start || !key.startsWith(q.prefix)) return false
    if (bound !== undefined && compareNames(key, bound) > 0) return false
    const c = compareNames(key, start.from)
    return c > 0 || (c === 0 && start.inclusive)
  }
  const newest = new Map<string, Newest>()
  const prefixes = new Set<string>()
  const consider = (name: string, deleted: boolean, entry: Newest): void => {
    const common = commonPrefix(name, q)
    if (common !== undefined) {
      if (!deleted && inRange(common)) prefixes.add(common)
    } else if (inRange(name) && newer(entry, newest.get(name))) newest.set(name, entry)
  }
  for (const page of pages) {
    for (const whole of page.records) consider(whole.name, whole.deleted, { whole })
    for (const brief of page.brief ?? []) consider(brief[0], brief[3], { brief })
    for (const common of page.prefixes) if (common.startsWith(q.prefix) && commonPrefix(common, q) === common && inRange(common)) prefixes.add(common)
  }
  const entries = [...newest.keys(), ...prefixes].sort(compareNames)
  const taken = entries.slice(0, q.limit)
  const truncated = entries.length > q.limit || pages.some((p) => p.truncated)
  const last = taken.at(-1)
  const merged: MergedPage = { records: [], unresolved: [], prefixes: [], truncated }
  for (const key of taken) {
    const entry = newest.get(key)
    if (!entry) merged.prefixes.push(key)
    else if ('whole' in entry) {
      if (!entry.whole.deleted) merged.records.push(entry.whole)
    } else if (!entry.brief[3]) merged.unresolved.push(key)
  }
  if (truncated && last !== undefined) merged.next = { after: last, skip: prefixes.has(last) }
  return merged
}

/**
 * How many entries to ask of each of `guests` guests for a page of `limit`:
 * each tracks about `replicas` in `guests` of the names, so together they
 * cover the page with a margin, instead of each answering `limit` entries
 * of which the merge keeps a fraction. With a delimiter every guest may
 * list the same common prefixes: then each is asked for `limit`.
 */
export function guestLimit(limit: number, guests: number, replicas: number, delimiter: string): number {
  if (delimiter !== '' || guests <= replicas) return limit
  return Math.min(limit, Math.ceil((limit * replicas * 1.25) / guests) + 8)
}

/** The continuation token a client sends back for the next page: opaque to it. */
export function encodeToken(next: { after: string; skip: boolean }): string {
  return Buffer.from(JSON.stringify([next.after, next.skip ? 1 : 0]), 'utf8').toString('base64url')
}

export function decodeToken(token: string): { after: string; skip: boolean } {
  try {
    const value: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'))
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && (value[1] === 0 || value[1] === 1)) {
      return { after: value[0], skip: value[1] === 1 }
    }
  } catch {
    // falls through to the error below
  }
  throw new HousePartyError('ERR_INVALID_ARGUMENT', 'the continuation token is not one this API handed out')
}
