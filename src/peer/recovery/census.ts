import type { FilesContext } from '../files/index.ts'
import { call } from '../net/index.ts'
import { type FileRecord, type FragmentRef, type GuestId, type HeldFragment, PintReplies } from '../protocol/index.ts'

/** What every guest holds, as its inventory said. Guests that did not answer are listed apart: their holdings are unknown, not empty. */
export interface Census {
  held: Map<GuestId, HeldFragment[]>
  silent: Set<GuestId>
  /** (name, version, index) → the guests holding that fragment, with the digest each holds. */
  where: Map<string, { holder: GuestId; fragment: HeldFragment }[]>
}

export function fragmentKey(name: string, version: string, index: number): string {
  return `${name}\u0000${version}\u0000${index}`
}

/**
 * The fragments of `record` that can be read, one per index: on a guest and,
 * where the census heard from that guest, really there with the recorded digest.
 */
export function usableFragments(record: FileRecord, guests: ReadonlySet<GuestId>, census: Census | undefined): FragmentRef[] {
  const seen = new Set<number>()
  return record.fragments.filter((f) => {
    if (seen.has(f.index) || !guests.has(f.holder)) return false
    if (census?.held.has(f.holder)) {
      const copies = census.where.get(fragmentKey(record.name, record.version, f.index)) ?? []
      if (!copies.some((c) => c.holder === f.holder && c.fragment.digest === f.digest)) return false
    }
    seen.add(f.index)
    return true
  })
}

/** Asks every guest for its inventory, all at once. */
export async function takeCensus(ctx: FilesContext, signal?: AbortSignal): Promise<Census> {
  const guests = ctx.roster.guests()
  const answers = await Promise.allSettled(
    guests.map((g) => call(g.address, { op: 'inventory' }, PintReplies.inventory, { ...ctx.dial, signal }).then((r) => r.fragments)),
  )
  const census: Census = { held: new Map(), silent: new Set(), where: new Map() }
  answers.forEach((answer, i) => {
    const id = (guests[i] as { id: GuestId }).id
    if (answer.status !== 'fulfilled') {
      census.silent.add(id)
      return
    }
    census.held.set(id, answer.value)
    for (const fragment of answer.value) {
      const key = fragmentKey(fragment.name, fragment.version, fragment.index)
      const list = census.where.get(key) ?? []
      list.push({ holder: id, fragment })
      census.where.set(key, list)
    }
  })
  return census
}
