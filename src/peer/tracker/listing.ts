import { HousePartyError } from '../../shared/errors.ts'
import type { FileRecord, ListedRecord } from '../protocol/index.ts'
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

/** One page: names (tombstones too, so a stale live record elsewhere loses to them) and common prefixes, in order. */
export interface Page {
  records: ListedRecord[]
  prefixes: string[]
  /** More entries follow the last one of this page. */
  truncated: boolean
}

/** Reads records in name order from `from` on (`from` itself only when `inclusive`). */
export type Scan = (from: string, inclusive: boolean) => Iterable<FileRecord>

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
  const page: Page = { records: [], prefixes: [], truncated: false }
  let cursor = startOf(q)
  const full = (): boolean => page.records.length + page.prefixes.length >= q.limit
  while (cursor) {
    const at: { from: string; inclusive: boolean } = cursor
    cursor = undefined
    for (const record of scan(at.from, at.inclusive)) {
      if (!record.name.startsWith(q.prefix)) return page
      const common = commonPrefix(record.name, q)
      // A tombstone under a common prefix does not make the prefix show: only a live name does.
      if (common !== undefined && record.deleted) continue
      if (full()) {
        page.truncated = true
        return page
      }
      if (common === undefined) {
        page.records.push(listedOf(record))
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

/** What a listing shows of a record. */
export function listedOf(r: FileRecord): ListedRecord {
  const { name, version, revision, deleted, size, hash, created } = r
  return { name, version, revision, deleted, size, hash, created, k: r.coding.k, m: r.coding.m, holders: r.fragments.map((f) => [f.index, f.holder]) }
}

/** Which of two replicas' records of a name is newer: by version, then revision, then (a tie of two moves) their holders. */
function compareListed(a: ListedRecord, b: ListedRecord): number {
  const byVersion = compareRevisions(a, b)
  if (byVersion !== 0) return byVersion
  const ha = JSON.stringify(a.holders)
  const hb = JSON.stringify(b.holders)
  return ha === hb ? 0 : ha > hb ? 1 : -1
}

export interface MergedPage {
  /** Live files only. */
  records: ListedRecord[]
  prefixes: string[]
  truncated: boolean
  /** Where the next page starts, when `truncated`. */
  next?: { after: string; skip: boolean }
}

/**
 * The party's page from the guests' pages: the newest record per name wins
 * (a replica may be stale), each name and prefix appears once, and the page
 * holds the first `limit` entries of them all. Every guest's page holds the
 * first `limit` of its own, so none of the party's first `limit` is missing.
 */
export function mergePages(pages: readonly Page[], q: PageQuery): MergedPage {
  const start = startOf(q)
  const inRange = (key: string): boolean => {
    if (!start || !key.startsWith(q.prefix)) return false
    const c = compareNames(key, start.from)
    return c > 0 || (c === 0 && start.inclusive)
  }
  const newest = new Map<string, ListedRecord>()
  const prefixes = new Set<string>()
  for (const page of pages) {
    for (const record of page.records) {
      const common = commonPrefix(record.name, q)
      if (common !== undefined) {
        if (!record.deleted && inRange(common)) prefixes.add(common)
      } else if (inRange(record.name)) {
        const known = newest.get(record.name)
        if (!known || compareListed(record, known) > 0) newest.set(record.name, record)
      }
    }
    for (const common of page.prefixes) if (common.startsWith(q.prefix) && commonPrefix(common, q) === common && inRange(common)) prefixes.add(common)
  }
  const entries = [...newest.keys(), ...prefixes].sort(compareNames)
  const taken = entries.slice(0, q.limit)
  const truncated = entries.length > q.limit || pages.some((p) => p.truncated)
  const last = taken.at(-1)
  const merged: MergedPage = {
    records: taken.flatMap((key) => {
      const record = newest.get(key)
      return record && !record.deleted ? [record] : []
    }),
    prefixes: taken.filter((key) => prefixes.has(key)),
    truncated,
  }
  if (truncated && last !== undefined) merged.next = { after: last, skip: prefixes.has(last) }
  return merged
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
