import type { FileRecord, ListedRecord } from '../protocol/index.ts'

/** What a listing shows of a record beyond what its row keeps in columns of their own (name, version, revision, deleted). */
export type ListedRest = Omit<ListedRecord, 'name' | 'version' | 'revision' | 'deleted'>

export function listedRestOf(r: FileRecord): ListedRest {
  const rest: ListedRest = {
    size: r.size,
    hash: r.hash,
    created: r.created,
    k: r.coding.k,
    m: r.coding.m,
    holders: r.fragments.map((f) => [f.index, f.holder]),
  }
  if (r.meta?.etag !== undefined) rest.etag = r.meta.etag
  if (r.parts !== undefined) rest.parts = r.parts.each.length
  return rest
}

/** What a listing shows of a record. */
export function listedOf(r: FileRecord): ListedRecord {
  const { name, version, revision, deleted } = r
  return { name, version, revision, deleted, ...listedRestOf(r) }
}
