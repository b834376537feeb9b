import type { Guest, GuestId } from '../protocol/index.ts'
import type { Membership } from './membership.ts'

/** The live guest list as the data plane sees it: who is there and where to reach them. */
export interface Roster {
  readonly selfId: GuestId | undefined
  guests(): readonly Guest[]
  addressOf(id: GuestId): string | undefined
}

export function rosterOf(membership: Membership): Roster {
  return {
    get selfId() {
      return membership.id
    },
    guests: () => membership.view?.guests ?? [],
    addressOf: (id) => membership.addressOf(id),
  }
}
