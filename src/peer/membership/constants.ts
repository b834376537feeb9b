/**
 * The core is stepped this often: resends, pings and deadlines are checked on
 * these ticks, and their lateness measures event-loop lag. A tenth of a second
 * is fine enough for 200 ms pings and resends, and wakes an idle peer half as
 * often as 50 ms did.
 */
export const TICK_MS = 100
/** Knocks are cheap and a door that does not answer in this time is probably gone. */
export const KNOCK_TIMEOUT_MS = 600
/** Resend a request this often until it is answered: UDP may lose any one datagram. */
export const RESEND_MS = 200
/** How long a newcomer waits for the door to confirm its join request is queued. */
export const JOIN_ACK_TIMEOUT_MS = 1200
/** How long a coordinator keeps a queued join before the newcomer must ask again. */
export const QUEUED_JOIN_TTL_MS = 10_000
/** Keep trying to deliver a commit this long; anyone still missing it catches up from the epoch every ping carries. */
export const COMMIT_DELIVERY_MS = 2_000
/** Join and remove requests may be relayed towards the coordinator at most this many times. */
export const MAX_HOPS = 3
/**
 * Pings each guest sends per interval. Up to this many other guests, everyone
 * pings everyone (detection in one silence period); beyond it, each guest
 * pings this many in a shuffled round-robin, so the cost per peer stays flat
 * however large the party grows (and a guest that stops answering is asked
 * every interval until it answers or is voted on).
 */
export const PING_FANOUT = 16
/** Lag reports older than this are forgotten: a peer that stopped reporting load is judged on the base timeouts again. */
export const LAG_WINDOW_MS = 10_000
/** The most any timeout is stretched for lag: detection slows under load, but never stops. */
export const MAX_STRETCH_MS = 10_000
/** A voted-dead guest whose removal has not committed by then is forgotten (and voted on again if still silent). */
export const DEAD_TTL_MS = 30_000
/** How long guests wait for each other's view-change answers beyond the proposal timeout, per request. */
export const VIEW_PAGE_TIMEOUT_MS = 1_000
