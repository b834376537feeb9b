export { Caretaker, type CaretakerOptions, type RecoveryEvents, type RecoverySettings } from './caretaker.ts'
export { type DrainResult, drain } from './drain.ts'
export { type PartyHealth, partyHealth } from './health.ts'
export { Scrubber, type ScrubEvents, type ScrubSettings } from './scrub.ts'
