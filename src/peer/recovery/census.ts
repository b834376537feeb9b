import type { GuestId, HeldFragment } from '../protocol/index.ts'
import type { FragmentClient } from '../transfer/index.ts'

/** One copy of a fragment, as the guest holding it described it. */
export interface Copy {
  holder: GuestId
  fragment: HeldFragment
}

/**
 * What the guests hold, as far as one pass could learn it. The planner reads
 * only this shape, so the way it is gathered (every guest's whole inventory
 * today) can change without touching the decisions made from it.
 */
export interface Census {
  /** Guests whose holdings are known: what they hold is in `where`, and what is not there they do not hold. */
  answered: Set<GuestId>
  /** Guests that did not answer: their holdings are unknown, not empty. */
  silent: Set<GuestId>
  /** Bytes each answering guest holds. */
  bytes: Map<GuestId, number>
  /** (name, version, index) → every copy of that fragment, with the digest each holds. */
  where: Map<string, Copy[]>
}

export function fragmentKey(name: string, version: string, index: number): string {
  return `${name}\u0000${version}\u0000${index}`
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

/** Asks every guest for its inventory, all at once. */
export async function takeCensus(fragments: FragmentClient, signal?: AbortSignal): Promise<Census> {
  const answers = await fragments.inventories(signal)
  return censusOf(answers.map((a) => ({ holder: a.holder, fragments: 'fragments' in a ? a.fragments : undefined })))
}
