/**
 * Time as the protocol sees it. Components take a Clock so tests can drive
 * timeouts and replay windows deterministically without sleeping.
 */
export interface Clock {
  /** Milliseconds since the epoch (wall clock: used for datagram timestamps). */
  now(): number
  /** Monotonic milliseconds (used for timeouts and failure detection). */
  monotonic(): number
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
}

/** A clock that only moves when told to. */
export class ManualClock implements Clock {
  #wall: number
  #mono = 0

  constructor(startWall = 1_700_000_000_000) {
    this.#wall = startWall
  }

  now(): number {
    return this.#wall
  }

  monotonic(): number {
    return this.#mono
  }

  advance(ms: number): void {
    this.#wall += ms
    this.#mono += ms
  }
}
