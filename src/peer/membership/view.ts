import { createHash } from 'node:crypto'
import { type Ballot, type Change, type Guest, type GuestId, isOwnLeave, type Newcomer, type RemovalReason, type View } from '../protocol/index.ts'

/**
 * Pure functions over the guest list. The list is kept in admission order:
 * the first guest is the longest-standing one; it coordinates changes while
 * it lives, and it breaks the tie when a party splits into two equal halves.
 */

export function foundingView(self: Newcomer): View {
  return { epoch: 1, guests: [{ ...self, since: 1 }] }
}

export function findGuest(view: View | undefined, id: GuestId): Guest | undefined {
  return view?.guests.find((g) => g.id === id)
}

/** The next view: removed guests out, updated guests at their new start and address (in their old place), newcomers appended, epoch + 1. */
export function applyChange(view: View, change: Change): View {
  const epoch = view.epoch + 1
  const gone = new Set(change.remove.map((r) => r.id))
  const updated = new Map(change.update.map((u) => [u.id, u]))
  const kept = view.guests
    .filter((g) => !gone.has(g.id))
    .map((g) => {
      const u = updated.get(g.id)
      return u ? { ...u, since: g.since } : g
    })
  return { epoch, guests: [...kept, ...change.add.map((n) => ({ ...n, since: epoch }))] }
}

/** A change that removes, updates and adds nobody. */
export function isEmptyChange(change: Change): boolean {
  return change.add.length === 0 && change.remove.length === 0 && change.update.length === 0
}

/** Where to reach each guest of `view` while `change` is decided: an updated guest already at its new address. */
export function reachableAt(view: View, change: Change): Guest[] {
  const updated = new Map(change.update.map((u) => [u.id, u]))
  return view.guests.map((g) => {
    const u = updated.get(g.id)
    return u ? { ...g, address: u.address } : g
  })
}

/**
 * Do `members` make a quorum of `view`? More than half of its guests, or
 * exactly half when they include the longest-standing guest: of two equal
 * halves exactly one is a quorum, and any two quorums share a guest.
 */
export function isQuorum(view: View, members: ReadonlySet<GuestId>): boolean {
  const n = view.guests.length
  if (n === 0) return false
  let count = 0
  for (const g of view.guests) if (members.has(g.id)) count++
  return 2 * count > n || (2 * count === n && members.has((view.guests[0] as Guest).id))
}

/** The first guest, in admission order, that is not excluded (voted dead, leaving). */
export function coordinatorOf(view: View, excluded: ReadonlySet<GuestId> = new Set()): Guest | undefined {
  return view.guests.find((g) => !excluded.has(g.id))
}

/** Orders ballots: a higher round wins; a tie goes to the higher proposer id. */
export function compareBallots(a: Ballot, b: Ballot): number {
  if (a.round !== b.round) return a.round - b.round
  return a.by === b.by ? 0 : a.by > b.by ? 1 : -1
}

/** The guests of `view` that `change` keeps: they are the ones who must approve it. */
export function staying(view: View, change: Change): Set<GuestId> {
  const gone = new Set(change.remove.map((r) => r.id))
  return new Set(view.guests.filter((g) => !gone.has(g.id)).map((g) => g.id))
}

/**
 * The guests of `view` whose votes on `change` count towards a quorum: those
 * who stay, and those who leave on their own (alive, and consenting). The
 * dead never vote. Without the leavers, the last of two guests could never
 * let the other go.
 */
export function voters(view: View, change: Change): Set<GuestId> {
  const out = staying(view, change)
  for (const r of change.remove) if (isOwnLeave(r.reason) && findGuest(view, r.id)) out.add(r.id)
  return out
}

export type NewcomerCheck =
  | { verdict: 'new' }
  /** On the list as this very start: its admission (or update) was lost on the way. */
  | { verdict: 'present' }
  /** A newer start of a guest that kept its membership state (a restart on its data dir, maybe at a new address): its entry is updated in place. */
  | { verdict: 'updates' }
  /** A newer start that lost that state: the old entry goes and the newcomer comes in. */
  | { verdict: 'replaces' }
  /** An older start of an identity that a newer one holds (a stale process, or a copied data dir). */
  | { verdict: 'superseded'; holder: Guest }

/** What admitting `newcomer` to `view` means. An identity is kept for life, so one id is one peer. */
export function checkNewcomer(view: View, newcomer: Newcomer, resumed = false): NewcomerCheck {
  const holder = findGuest(view, newcomer.id)
  if (!holder) return { verdict: 'new' }
  if (holder.incarnation === newcomer.incarnation && holder.address === newcomer.address && holder.apiPort === newcomer.apiPort) return { verdict: 'present' }
  if (newcomer.incarnation > holder.incarnation) return { verdict: resumed ? 'updates' : 'replaces' }
  return { verdict: 'superseded', holder }
}

/** A short fingerprint of a view: two guests with one epoch must hold the same digest. */
export function viewDigest(view: View): string {
  const h = createHash('sha256').update(String(view.epoch))
  for (const g of view.guests) h.update(`|${g.id}@${g.address}/${g.apiPort}#${g.since}.${g.incarnation}`)
  return h.digest('hex').slice(0, 16)
}

export interface ViewDiff {
  added: Guest[]
  removed: Guest[]
}

/** Who came and went between two views (a guest updated in place to a newer start is neither). */
export function diffViews(before: View | undefined, after: View): ViewDiff {
  const key = (g: Guest): string => `${g.id}#${g.since}`
  const beforeKeys = new Set(before?.guests.map(key) ?? [])
  const afterKeys = new Set(after.guests.map(key))
  return {
    added: after.guests.filter((g) => !beforeKeys.has(key(g))),
    removed: (before?.guests ?? []).filter((g) => !afterKeys.has(key(g))),
  }
}

/** The reasons a change gives for its removals, by guest. */
export function removalReasons(change: Change): Map<GuestId, RemovalReason> {
  return new Map(change.remove.map((r) => [r.id, r.reason]))
}
