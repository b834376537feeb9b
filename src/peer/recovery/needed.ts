import type { FilesContext } from '../files/index.ts'
import type { DropQuery } from '../transfer/index.ts'

/**
 * Whether the newest record of a file counts on this peer's copy of the
 * fragments a drop asks for (the holder's side of a drop: see serveDrop).
 * The newest record is that of every tracker asked, so one stale planner
 * cannot outvote the others. When no tracker answers, the copy counts as
 * needed: one kept by mistake is dropped by a later census, one deleted by
 * mistake is gone.
 */
export async function copyNeeded(ctx: FilesContext, query: DropQuery, signal?: AbortSignal): Promise<boolean> {
  try {
    const record = await ctx.trackers.where(query.name, signal)
    if (!record || record.deleted || record.version !== query.version) return false
    return record.fragments.some((f) => f.holder === ctx.roster.selfId && (query.index === undefined || f.index === query.index))
  } catch {
    return true
  }
}
