import type { FileRecord } from '../protocol/index.ts'

/** Positive when `a` supersedes `b`: a newer version, or the same version moved more recently. */
export function compareRecords(a: FileRecord, b: FileRecord): number {
  if (a.version !== b.version) return a.version > b.version ? 1 : -1
  return a.revision - b.revision
}

/** The newest of several answers for one name (undefined ignored). */
export function newestRecord(records: readonly (FileRecord | null | undefined)[]): FileRecord | undefined {
  let best: FileRecord | undefined
  for (const r of records) if (r && (!best || compareRecords(r, best) > 0)) best = r
  return best
}
