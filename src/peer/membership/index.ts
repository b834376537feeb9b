export { type DetectorEvent, FailureDetector } from './detector.ts'
export { Membership, type MembershipEvent, type MembershipStatus, type ViewChange } from './membership.ts'
export { type Roster, rosterOf } from './roster.ts'
export { applyChange, checkNewcomer, coordinatorOf, diffViews, foundingView, mayCoordinate, type Newcomer, viewDigest } from './view.ts'
