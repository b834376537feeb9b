import type { FileRecord } from '../protocol/index.ts'

/** Names a log holds before it gives up (a reader then reads every record again): about a minute of a busy tracker's writes. */
export const CHANGE_LOG_NAMES = 50_000

/**
 * The names written since the log was last taken, each with its record as
 * it was before the first of those writes (undefined: there was none). A
 * reader that knew every record when it took the log can bring what it
 * derived from them up to date from these alone (see recovery/census.ts).
 * More than `limit` names and the log only says it overflowed.
 */
export class ChangeLog {
  readonly #limit: number
  #before: Map<string, FileRecord | undefined> | undefined = new Map()

  constructor(limit = CHANGE_LOG_NAMES) {
    this.#limit = limit
  }

  /** `name` is about to be written; `before` is its record now. Only the first write since the last take counts. */
  note(name: string, before: FileRecord | undefined): void {
    const log = this.#before
    if (!log || log.has(name)) return
    if (log.size >= this.#limit) this.#before = undefined
    else log.set(name, before)
  }

  /** What changed since the last take (undefined when it overflowed), and a fresh log from now on. */
  take(): ReadonlyMap<string, FileRecord | undefined> | undefined {
    const taken = this.#before
    this.#before = new Map()
    return taken
  }
}
