/** How long a new primary leaves a file to the previous one, still a guest, before repairing it itself: a repair already started there finishes first. */
export const SETTLE_MS = 3_000

/**
 * Rebalancing stops once the emptiest guest holds at least 90% of the mean,
 * or the fullest at most 110%: closer than that, moves cost more traffic
 * than the evenness they buy, and guests would trade fragments back and forth.
 */
export const REBALANCE_LOW = 0.9
export const REBALANCE_HIGH = 1.1

/** How long a census of changes waits before it looks again at parts that differed (at most a quarter of the census interval). */
export const CENSUS_SETTLE_MS = 2_000

/** A pass skipped because this peer's picture of the party may be stale (it was paused lately) is tried again this much later. */
export const UNCERTAIN_RECHECK_MS = 1_000

/** A view change triggers a quick pass once the list has been still this long: joins and deaths often come in bursts. */
export const VIEW_SETTLE_MS = 250

/** After an absent holder's rebuild delay ends, the pass that rebuilds its fragments runs this much later (timers may fire early). */
export const DUE_SLACK_MS = 50
