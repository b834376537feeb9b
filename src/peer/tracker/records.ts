import type { FileRecord } from '../protocol/index.ts'

/**
 * Positive when `a` supersedes `b`: a newer version, or the same version
 * moved more recently (a higher revision). Two repairs racing from the same
 * revision produce equal revisions with different holders; the tie is broken
 * on the fragment list itself, so every replica keeps the same winner and the
 * loser knows to drop what it rebuilt.
 */
export function compareRecords(a: FileRecord, b: FileRecord): number {
  const byVersion = compareRevisions(a, b)
  if (byVersion !== 0) return byVersion
  const fa = fragmentsKey(a)
  const fb = fragmentsKey(b)
  return fa === fb ? 0 : fa > fb ? 1 : -1
}

/** Positive when `a` is a newer version, or the same version at a higher revision; 0 when both are the same. */
export function compareRevisions(a: Pick<FileRecord, 'version' | 'revision'>, b: Pick<FileRecord, 'version' | 'revision'>): number {
  if (a.version !== b.version) return a.version > b.version ? 1 : -1
  return a.revision - b.revision
}

/** The fragment list in a canonical form (by index). */
function fragmentsKey(record: FileRecord): string {
  return [...record.fragments]
    .sort((x, y) => x.index - y.index)
    .map((f) => `${f.index}:${f.holder}:${f.digest}`)
    .join(',')
}

/** The newest of several answers for one name (undefined ignored). */
export function newestRecord(records: readonly (FileRecord | null | undefined)[]): FileRecord | undefined {
  let best: FileRecord | undefined
  for (const r of records) if (r && (!best || compareRecords(r, best) > 0)) best = r
  return best
}
