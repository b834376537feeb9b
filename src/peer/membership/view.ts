import { createHash } from 'node:crypto'
import type { Guest, GuestId, View } from '../protocol/index.ts'

/**
 * Pure functions over the guest list. The list is kept in admission order:
 * the first guest that is not being removed coordinates every change, so
 * changes are proposed one at a time by one peer, and concurrent joins queue
 * up instead of colliding.
 */
export type Newcomer = Omit<Guest, 'since'>

export function emptyView(): View {
  return { epoch: 0, guests: [] }
}

export function foundingView(self: Newcomer): View {
  return { epoch: 1, guests: [{ ...self, since: 1 }] }
}

export function findGuest(view: View | undefined, id: GuestId): Guest | undefined {
  return view?.guests.find((g) => g.id === id)
}

export function guestIds(view: View): GuestId[] {
  return view.guests.map((g) => g.id)
}

/** The first guest, in admission order, that is not excluded (suspected or being removed). */
export function coordinatorOf(view: View, excluded: ReadonlySet<GuestId> = new Set()): Guest | undefined {
  return view.guests.find((g) => !excluded.has(g.id))
}

/**
 * May `proposer` coordinate a change to `view` that removes `removed`? Only
 * if every guest admitted before it is among those removed: the proposer is
 * the coordinator of the view the change produces.
 */
export function mayCoordinate(view: View, proposer: GuestId, removed: readonly GuestId[]): boolean {
  const gone = new Set(removed)
  for (const g of view.guests) {
    if (g.id === proposer) return !gone.has(proposer)
    if (!gone.has(g.id)) return false
  }
  return false
}

/** The next view: removed guests out, newcomers appended, epoch + 1. */
export function applyChange(view: View, newcomers: readonly Newcomer[], removed: readonly GuestId[]): View {
  const epoch = view.epoch + 1
  const gone = new Set(removed)
  const kept = view.guests.filter((g) => !gone.has(g.id))
  return { epoch, guests: [...kept, ...newcomers.map((n) => ({ ...n, since: epoch }))] }
}

export type JoinCheck = { ok: true; replaces: GuestId[] } | { ok: false; code: 'ID_TAKEN' }

/**
 * Can `newcomer` join `view`? An id held by a guest at another address is
 * taken. A guest already at the newcomer's address is an earlier life of the
 * same peer (it restarted before anyone noticed it die): it is replaced.
 */
export function checkNewcomer(view: View, newcomer: Newcomer, alsoJoining: readonly Newcomer[] = []): JoinCheck {
  const holder = view.guests.find((g) => g.id === newcomer.id)
  if (holder && holder.address !== newcomer.address) return { ok: false, code: 'ID_TAKEN' }
  if (alsoJoining.some((n) => n.id === newcomer.id && n.address !== newcomer.address)) return { ok: false, code: 'ID_TAKEN' }
  const replaces = view.guests.filter((g) => g.address === newcomer.address).map((g) => g.id)
  return { ok: true, replaces }
}

/** A short fingerprint of a view, for logs and for spotting two views with one epoch. */
export function viewDigest(view: View): string {
  const h = createHash('sha256').update(String(view.epoch))
  for (const g of view.guests) h.update(`|${g.id}@${g.address}/${g.apiPort}#${g.since}`)
  return h.digest('hex').slice(0, 12)
}

export function diffViews(before: View | undefined, after: View): { added: Guest[]; removed: Guest[] } {
  const beforeIds = new Set(before?.guests.map((g) => `${g.id}#${g.since}`) ?? [])
  const afterIds = new Set(after.guests.map((g) => `${g.id}#${g.since}`))
  return {
    added: after.guests.filter((g) => !beforeIds.has(`${g.id}#${g.since}`)),
    removed: (before?.guests ?? []).filter((g) => !afterIds.has(`${g.id}#${g.since}`)),
  }
}
