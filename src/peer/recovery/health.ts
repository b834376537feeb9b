import type { FilesContext } from '../files/index.ts'
import { readableFragments } from './assess.ts'
import { takeCensus } from './census.ts'

export interface PartyHealth {
  guests: number
  /** Guests that answered both the record listing and the inventory. */
  answered: number
  files: number
  healthy: number
  degraded: number
  lost: number
  /** Up to 20 names of files below full redundancy, fewest usable fragments first. */
  worst: { name: string; usable: number; needed: number; total: number }[]
}

/** The party's redundancy from every guest's records and inventory: what `GET /health/party` answers. */
export async function partyHealth(ctx: FilesContext, signal?: AbortSignal): Promise<PartyHealth> {
  // Records first, census second: every fragment a record names was durable before the census asked, and one
  // moved after the record was read is found at its new place (readableFragments looks at every live copy).
  const { records, asked, answered } = await ctx.trackers.listAll(signal)
  const census = await takeCensus(ctx.fragments, signal)
  const guests = new Set(ctx.roster.guests().map((g) => g.id))
  let healthy = 0
  let degraded = 0
  let lost = 0
  const worst: PartyHealth['worst'] = []
  const live = records.filter((r) => !r.deleted)
  for (const record of live) {
    const { k, m } = record.coding
    const usable = readableFragments(record, guests, census)
    if (usable >= k + m) healthy++
    else {
      if (usable >= k) degraded++
      else lost++
      worst.push({ name: record.name, usable, needed: k, total: k + m })
    }
  }
  worst.sort((a, b) => a.usable - a.needed - (b.usable - b.needed))
  return { guests: asked, answered: Math.min(answered, asked - census.silent.size), files: live.length, healthy, degraded, lost, worst: worst.slice(0, 20) }
}
