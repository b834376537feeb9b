import type { FileRecord } from '../../src/peer/protocol/index.ts'
import { type Arc, ArcParts, PartDigests, recordFingerprint, ringPosition } from '../../src/peer/ring/index.ts'
import type { TrackerStore } from '../../src/peer/tracker/index.ts'

/** Each record's ring position and fingerprint, computed once: a test counts digests of the same records many times. */
const printed = new WeakMap<FileRecord, { position: string; print: bigint }>()

/** The digests of `records` in each part of `arc`, counted one by one (what a tracker's index must answer). */
export function recordDigestsOf(records: Iterable<FileRecord>, arc: Arc, parts: number): string[] {
  const split = new ArcParts(arc, parts)
  const out = new PartDigests(split.count)
  for (const r of records) {
    let known = printed.get(r)
    if (!known) {
      known = { position: ringPosition(r.name), print: recordFingerprint(r.name, r.version, r.revision, r.deleted) }
      printed.set(r, known)
    }
    const part = split.partOf(known.position)
    if (part !== undefined) out.add(part, known.print)
  }
  return out.encode()
}

/** Every record a tracker store keeps, in name order. */
export async function allRecords(store: TrackerStore): Promise<FileRecord[]> {
  const out: FileRecord[] = []
  for await (const record of store.everyRecord()) out.push(record)
  return out
}

/** A tracker record of a small 2+1 file on three guests; `overrides` change any field. */
export function aRecord(overrides: Partial<FileRecord> = {}): FileRecord {
  return {
    name: 'a',
    version: '0000000000001-00000000',
    revision: 1,
    deleted: false,
    size: 10,
    hash: 'f'.repeat(64),
    created: 1,
    coding: { k: 2, m: 1, stripeBytes: 1024 * 1024 },
    fragments: [
      { index: 0, holder: '00000000000000aa', digest: 'a'.repeat(64) },
      { index: 1, holder: '00000000000000bb', digest: 'b'.repeat(64) },
      { index: 2, holder: '00000000000000cc', digest: 'c'.repeat(64) },
    ],
    ...overrides,
  }
}

/** Fragment `index` of `record` moved to `holder`, as the next revision. */
export function moved(record: FileRecord, index: number, holder: string): FileRecord {
  return { ...record, revision: record.revision + 1, fragments: record.fragments.map((f) => (f.index === index ? { ...f, holder } : f)) }
}
