export { TICK_MS } from './constants.ts'
export { MembershipCore } from './core.ts'
export { Membership, type MembershipOptions } from './membership.ts'
export { MEMBERSHIP_FILE, MembershipFile } from './persist.ts'
export { type Roster, rosterOf } from './roster.ts'
export {
  type CoreEnv,
  type CoreLog,
  type CoreOptions,
  type CoreOutput,
  MEMBERSHIP_EVENTS,
  type MembershipEvent,
  type MembershipStatus,
  type PersistedMembership,
  type ViewChange,
} from './state.ts'
export { applyChange, checkNewcomer, coordinatorOf, diffViews, foundingView, isQuorum, viewDigest } from './view.ts'
