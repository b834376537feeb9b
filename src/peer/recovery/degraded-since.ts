/**
 * When this peer first saw each file degraded, for the time-to-recover metric.
 * Each full pass starts afresh (newPass): the names it finds whole, gone or
 * another's go; those it finds degraded again keep the time the last pass had.
 */
export class DegradedSince {
  #since = new Map<string, number>()
  /** The last pass's times, given up as this pass carries them over (see note). */
  #earlier: Map<string, number> | undefined

  /** A full pass starts: what the last one found carries over only to the names this one finds degraded too. */
  newPass(): void {
    this.#earlier = this.#since
    this.#since = new Map()
  }

  /** The full pass ended: what it did not find degraded again is gone (a census of changes after it starts from its view). */
  passDone(): void {
    this.#earlier = undefined
  }

  /**
   * Of the names `looked` at, those in `degraded` are degraded since `now` (unless already, or, in a full pass, in
   * the last), the others no longer. The last pass's entries are given up as they are carried over: the pass after
   * a death would otherwise hold all its degraded names, over a hundred thousand per survivor at a million files,
   * until the rebuilding pass after it ends.
   */
  note(looked: Iterable<string>, degraded: ReadonlySet<string>, now: number): void {
    for (const name of looked) if (!degraded.has(name)) this.#since.delete(name)
    for (const name of degraded) {
      if (this.#since.has(name)) continue
      this.#since.set(name, this.#earlier?.get(name) ?? now)
      this.#earlier?.delete(name)
    }
  }

  /** `name` is whole again: when it was first seen degraded, if it was (and it is forgotten). */
  recovered(name: string): number | undefined {
    const since = this.#since.get(name)
    this.#since.delete(name)
    return since
  }
}
