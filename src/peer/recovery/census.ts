import { yieldToLoop } from '../../shared/lifecycle.ts'
import { fragmentBytes } from '../codec/index.ts'
import type { FileRecord, FragmentRef, GuestId, HeldFragment } from '../protocol/index.ts'
import { type Arc, ArcParts, DIGEST_PARTS, differingParts, fingerprint, PartDigests, ringPosition } from '../ring/index.ts'
import type { FragmentClient } from '../transfer/index.ts'

/** One copy of a fragment, as the guest holding it described it. */
export interface Copy {
  holder: GuestId
  fragment: HeldFragment
}

/**
 * What the guests hold, as far as one pass could learn it. The planner reads
 * only this shape (through copiesOf), so the way it is gathered (whole
 * inventories, or digests and the parts that differ) can change without
 * touching the decisions made from it.
 */
export interface Census {
  /** Guests whose holdings are known: what they hold is what copiesOf finds, and nothing else. */
  answered: Set<GuestId>
  /** Guests that did not answer: their holdings are unknown, not empty. */
  silent: Set<GuestId>
  /** Bytes each answering guest holds. */
  bytes: Map<GuestId, number>
  /**
   * (name, version, index) → the copies guests listed, with the digest each holds. A census by digest lists only
   * where a guest's digest differed; the copies its digests vouch for are read through copiesOf.
   */
  where: Map<string, Copy[]>
  /** For a census by digest: whether `holder`'s digest agreed for the part `record` is in (so it holds what the record says it holds). */
  vouches?: (holder: GuestId, record: FileRecord) => boolean
  /** For a census by digest: parts compared, parts that differed, and fragments listed because they did. */
  exchanged?: { parts: number; differing: number; listed: number }
  /** For a census by digest: what each guest was expected to answer per part, from the records (see digestsAgree). */
  expected?: ReadonlyMap<GuestId, PartDigests>
}

export function fragmentKey(name: string, version: string, index: number): string {
  return `${name}\u0000${version}\u0000${index}`
}

/** Whether the census found `ref`'s holder holding that very fragment (the recorded digest): vouched for, or listed. */
export function holdsAsRecorded(census: Census, record: FileRecord, ref: FragmentRef): boolean {
  // Asked of every fragment of every record in a pass: the vouched case costs no string or copy.
  if (!record.deleted && census.vouches?.(ref.holder, record)) return true
  return (
    census.where.get(fragmentKey(record.name, record.version, ref.index))?.some((c) => c.holder === ref.holder && c.fragment.digest === ref.digest) ?? false
  )
}

/** Every copy of fragment `index` of `record` the census knows of: those listed, and the recorded one if its holder's digest vouches for it. */
export function copiesOf(census: Census, record: FileRecord, index: number): Copy[] {
  const listed = census.where.get(fragmentKey(record.name, record.version, index)) ?? []
  const ref = record.fragments.find((f) => f.index === index)
  if (!ref || record.deleted || !census.vouches?.(ref.holder, record)) return listed
  return [...listed, { holder: ref.holder, fragment: copyFromRecord(record, index, ref.digest) }]
}

/** A census from each guest's answer: its whole inventory, or undefined if it did not answer. */
export function censusOf(answers: Iterable<{ holder: GuestId; fragments: readonly HeldFragment[] | undefined }>): Census {
  const census: Census = { answered: new Set(), silent: new Set(), bytes: new Map(), where: new Map() }
  for (const { holder, fragments } of answers) {
    if (!fragments) {
      census.silent.add(holder)
      continue
    }
    census.answered.add(holder)
    let bytes = 0
    for (const fragment of fragments) {
      bytes += fragment.bytes
      const key = fragmentKey(fragment.name, fragment.version, fragment.index)
      const list = census.where.get(key)
      if (list) list.push({ holder, fragment })
      else census.where.set(key, [{ holder, fragment }])
    }
    census.bytes.set(holder, bytes)
  }
  return census
}

/**
 * A census of one arc by digest (anti-entropy). Each guest answers one short
 * digest per part of the arc; only where it differs from what `records` say
 * that guest holds is the guest asked to list its fragments, for those parts
 * alone. So a census of a quiet party costs the same however many files it
 * holds. Where a guest's digest agrees, it holds exactly what the records
 * say (to 64 bits of fingerprint), and the census vouches for those copies
 * as the records describe them: copiesOf reads the same either way.
 */
export async function takeArcCensus(
  client: FragmentClient,
  arc: Arc,
  records: readonly FileRecord[],
  guests: readonly GuestId[],
  signal?: AbortSignal,
  partCount = DIGEST_PARTS,
): Promise<Census> {
  const parts = new ArcParts(arc, partCount)
  const expected = new Map<GuestId, PartDigests>(guests.map((g) => [g, new PartDigests(parts.count)]))
  for (const [i, record] of records.entries()) {
    expect(expected, parts, record, 1)
    // Three fingerprints a record: let the event loop run now and then over a large arc.
    if (i % 2000 === 1999) await yieldToLoop()
  }
  return censusFrom(await askGuests(client, parts, expected, signal), parts, expected)
}

/**
 * A census of one arc against digests the caller keeps up to date as
 * records change (see Caretaker): only the parts where some guest's digest
 * differs are examined, their records read (`readParts`, the records of the
 * selected parts) and the guests that differ there asked to list them.
 * `changed` are records written since the digests were last compared: the
 * census describes their copies too. Undefined when a guest did not answer
 * (what it holds is unknown) or more than a quarter of the parts differ:
 * the caller then takes a census of every record.
 *
 * Under a stream of puts some parts always differ for a moment: a fragment
 * is stored before its record is written. With `settle`, parts that differ
 * are looked at again once it has run (it waits a little and brings
 * `expected` up to date, returning the records written meanwhile, or
 * undefined when it could not): only
 * parts that differed both times are read and listed, so what a census
 * reads follows what is wrong, not the puts in flight. A part that differs
 * only the second time is left to the next census, records and all: the
 * names of its changed records come back as `unplanned`, for the caller to
 * hand the next census as changed again (their digests are counted already,
 * so nothing else would bring them back where the guests agree with them).
 */
export async function takePartCensus(
  client: FragmentClient,
  parts: ArcParts,
  expected: ReadonlyMap<GuestId, PartDigests>,
  changed: readonly FileRecord[],
  readParts: (selected: ReadonlySet<number>) => FileRecord[],
  signal?: AbortSignal,
  settle?: () => Promise<readonly FileRecord[] | undefined>,
): Promise<{ census: Census; records: FileRecord[]; unplanned: string[] } | undefined> {
  const byName = new Map(changed.map((r) => [r.name, r]))
  let looked = await digestsOfGuests(client, parts, expected, signal)
  if (!looked) return undefined
  /** Per guest, the parts to list: those that differ (both times, when looked at twice). */
  let toList = new Map([...looked].map(([holder, d]) => [holder, d.differing]))
  /** Parts whose records wait for the next census: a guest's digest there differed the second time only. */
  const unsettled = new Set<number>()
  if (settle && [...toList.values()].some((d) => d.length > 0)) {
    const written = await settle()
    if (!written) return undefined
    for (const r of written) byName.set(r.name, r)
    const first = looked
    looked = await digestsOfGuests(client, parts, expected, signal)
    if (!looked) return undefined
    toList = new Map()
    for (const [holder, d] of looked) {
      const before = new Set(first.get(holder)?.differing)
      toList.set(
        holder,
        d.differing.filter((p) => before.has(p)),
      )
      for (const p of d.differing) if (!before.has(p)) unsettled.add(p)
    }
  }
  const selected = new Set([...toList.values()].flat().filter((p) => !unsettled.has(p)))
  // Most of the arc differs (a guest lost its disk): a census of every record, read page by page, does better.
  if (selected.size > parts.count / 4) return undefined
  const asked: Asked[] = []
  for (const [holder, d] of looked) {
    const list = (toList.get(holder) ?? []).filter((p) => selected.has(p))
    try {
      const listed = list.length > 0 ? await client.inventoryIn(holder, parts.arc, parts.count, list, signal) : []
      asked.push({ holder, answer: { bytes: d.bytes, differing: d.differing, listed } })
    } catch {
      return undefined
    }
  }
  if (selected.size > 0) for (const record of readParts(selected)) byName.set(record.name, record)
  const records: FileRecord[] = []
  const unplanned: string[] = []
  for (const r of byName.values()) {
    if (unsettled.has(parts.partOf(ringPosition(r.name)) as number)) unplanned.push(r.name)
    else records.push(r)
  }
  return { census: censusFrom(asked, parts, expected), records, unplanned }
}

/** Each guest's digests of the arc and the parts where they differ from what it is expected to hold; undefined if a guest did not answer. */
async function digestsOfGuests(
  client: FragmentClient,
  parts: ArcParts,
  expected: ReadonlyMap<GuestId, PartDigests>,
  signal?: AbortSignal,
): Promise<Map<GuestId, { bytes: number; differing: number[] }> | undefined> {
  const answers = await Promise.all(
    [...expected].map(async ([holder, wanted]) => {
      try {
        const digests = await client.digests(holder, parts.arc, parts.count, signal)
        return [holder, { bytes: digests.bytes, differing: differingParts(wanted.encode(), digests.parts) }] as const
      } catch {
        return undefined
      }
    }),
  )
  return answers.every((a) => a !== undefined) ? new Map(answers) : undefined
}

/** Adds (1) or takes back (-1) what `record` says each guest holds to the expected digest of its part (none for a tombstone). */
export function expect(expected: ReadonlyMap<GuestId, PartDigests>, parts: ArcParts, record: FileRecord | undefined, sign: 1 | -1): void {
  if (!record || record.deleted) return
  const part = parts.partOf(ringPosition(record.name))
  if (part === undefined) return
  for (const ref of record.fragments) expected.get(ref.holder)?.add(part, fingerprint(record.name, record.version, ref.index, ref.digest), sign)
}

interface Asked {
  holder: GuestId
  /** Undefined when the guest did not answer. */
  answer?: { bytes: number; differing: number[]; listed: HeldFragment[] }
}

/** Each guest's digests of the arc, compared with what it is expected to hold; the fragments of the parts that differ, listed. */
async function askGuests(client: FragmentClient, parts: ArcParts, expected: ReadonlyMap<GuestId, PartDigests>, signal?: AbortSignal): Promise<Asked[]> {
  return Promise.all(
    [...expected].map(async ([holder, wanted]): Promise<Asked> => {
      try {
        const digests = await client.digests(holder, parts.arc, parts.count, signal)
        const differing = differingParts(wanted.encode(), digests.parts)
        const listed = differing.length > 0 ? await client.inventoryIn(holder, parts.arc, parts.count, differing, signal) : []
        return { holder, answer: { bytes: digests.bytes, differing, listed } }
      } catch {
        return { holder }
      }
    }),
  )
}

/** The census from the guests' answers: listed fragments where a digest differed; where it agreed, the records' copies are vouched for. */
function censusFrom(asked: readonly Asked[], parts: ArcParts, expected: ReadonlyMap<GuestId, PartDigests>): Census {
  const exchanged = { parts: 0, differing: 0, listed: 0 }
  const census: Census = { answered: new Set(), silent: new Set(), bytes: new Map(), where: new Map(), exchanged, expected }
  /** Per answering guest, the parts whose digests differed: everywhere else it holds exactly what the records say. */
  const differed = new Map<GuestId, Set<number>>()
  for (const { holder, answer } of asked) {
    if (!answer) {
      census.silent.add(holder)
      continue
    }
    census.answered.add(holder)
    census.bytes.set(holder, answer.bytes)
    exchanged.parts += parts.count
    exchanged.differing += answer.differing.length
    exchanged.listed += answer.listed.length
    differed.set(holder, new Set(answer.differing))
    for (const fragment of answer.listed) addCopy(census, { holder, fragment })
  }
  // Where a digest agreed the copies are as the records say: vouched for, not built (at a million records, three
  // copies each would be most of a full pass's memory). The part of each record is worked out once.
  const partOf = new WeakMap<FileRecord, number | undefined>()
  census.vouches = (holder, record) => {
    let part = partOf.get(record)
    if (part === undefined && !partOf.has(record)) {
      part = parts.partOf(ringPosition(record.name))
      partOf.set(record, part)
    }
    return part !== undefined && differed.get(holder)?.has(part) === false
  }
  return census
}

/**
 * Whether every guest still holds exactly what a census found it expected to
 * hold: each answers its digests of the arc and none differs. Costs what a
 * census of a quiet party costs, without reading a record; `parts` is how
 * many parts were compared (for the metrics).
 */
export async function digestsAgree(
  client: FragmentClient,
  arc: Arc,
  expected: ReadonlyMap<GuestId, PartDigests>,
  signal?: AbortSignal,
): Promise<{ agreed: boolean; parts: number }> {
  let compared = 0
  const answers = await Promise.all(
    [...expected].map(async ([holder, digests]) => {
      const wanted = digests.encode()
      try {
        const answered = await client.digests(holder, arc, wanted.length, signal)
        compared += wanted.length
        return differingParts(wanted, answered.parts).length === 0
      } catch {
        return false
      }
    }),
  )
  return { agreed: answers.every((a) => a), parts: compared }
}

function addCopy(census: Census, copy: Copy): void {
  const key = fragmentKey(copy.fragment.name, copy.fragment.version, copy.fragment.index)
  const list = census.where.get(key)
  if (list) list.push(copy)
  else census.where.set(key, [copy])
}

/** A copy a holder's digest vouched for, described from the record (it was stored when the file was created, or later). */
function copyFromRecord(record: FileRecord, index: number, digest: string): HeldFragment {
  const { name, version, size, coding, hash, created } = record
  return { name, version, index, size, bytes: fragmentBytes(size, coding), digest, coding, hash, created, stored: created }
}
