import type { Domains, Guest, GuestId } from '../protocol/index.ts'
import type { Membership } from './membership.ts'

/** The live guest list as the data plane sees it: who is there, where to reach them and where they run. */
export interface Roster {
  readonly selfId: GuestId | undefined
  guests(): readonly Guest[]
  addressOf(id: GuestId): string | undefined
  /** A guest's failure domains, as it announced them (undefined: its own, or not a guest). */
  domainsOf(id: GuestId): Domains | undefined
  /** Why this peer's guest list and records may be out of date now (see Membership.uncertain); undefined when they are not. */
  uncertain(): string | undefined
}

export function rosterOf(membership: Membership): Roster {
  // Placement asks for every candidate's domains on every put: looked up by id, once per guest list.
  let indexed: { guests: readonly Guest[]; byId: Map<GuestId, Guest> } | undefined
  const guests = (): readonly Guest[] => membership.view?.guests ?? []
  return {
    get selfId() {
      return membership.id
    },
    guests,
    addressOf: (id) => membership.addressOf(id),
    uncertain: () => membership.uncertain(),
    domainsOf: (id) => {
      const list = guests()
      if (indexed?.guests !== list) indexed = { guests: list, byId: new Map(list.map((g) => [g.id, g])) }
      return indexed.byId.get(id)?.domains
    },
  }
}
