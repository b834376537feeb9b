/** Knocks are cheap and a door that does not answer in this time is probably gone. */
export const KNOCK_TIMEOUT_MS = 600
/** Resend a knock or join this often: UDP may lose any one datagram. */
export const RESEND_MS = 200
/** How long a newcomer waits for the door to confirm its join request is queued. */
export const JOIN_ACK_TIMEOUT_MS = 1200
/** How long a coordinator keeps a queued join before the newcomer must ask again. */
export const QUEUED_JOIN_TTL_MS = 10_000
/** Keep trying to deliver a commit this long; anyone still missing it catches up by epoch gossip. */
export const COMMIT_DELIVERY_MS = 2_000
/** Join and remove requests may be relayed to the coordinator at most this many times. */
export const MAX_HOPS = 3
/** How many newcomers one view change admits, so a flood of knocks cannot make a datagram too large. */
export const MAX_NEWCOMERS_PER_CHANGE = 32
