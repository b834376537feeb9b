import type { FilesContext } from '../files/index.ts'
import { call } from '../net/index.ts'
import { type GuestId, type HeldFragment, PintReplies } from '../protocol/index.ts'

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
