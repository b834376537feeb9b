import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { z } from 'zod'
import { HousePartyError } from '../../shared/errors.ts'
import { Ballot, Change, View } from '../protocol/index.ts'
import type { PersistedMembership } from './state.ts'

/** Where membership keeps its state, inside the data dir. */
export const MEMBERSHIP_FILE = 'membership.json'

const Persisted = z.object({
  view: View.optional(),
  floorEpoch: z.number().int().nonnegative(),
  acceptor: z
    .object({
      baseEpoch: z.number().int().nonnegative(),
      promised: Ballot.optional(),
      accepted: z.object({ ballot: Ballot, change: Change, digest: z.string() }).optional(),
    })
    .optional(),
})

/**
 * The membership state on disk. Writes are synchronous and fsynced (the
 * file, then its directory) because the core relies on them before it
 * answers: a promise must survive a crash that follows it. They happen a
 * few times per guest list change, not per ping.
 */
export class MembershipFile {
  readonly #path: string

  constructor(dataDir: string) {
    this.#path = join(dataDir, MEMBERSHIP_FILE)
  }

  /** The state an earlier start saved, if any. */
  load(): PersistedMembership | undefined {
    let text: string
    try {
      text = readFileSync(this.#path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new HousePartyError('ERR_INVALID_CONFIG', `cannot read ${this.#path}: ${(err as Error).message}`)
    }
    const parsed = Persisted.safeParse(safeJson(text))
    // A damaged file only costs this peer its place: it joins again as a newer start instead of resuming.
    return parsed.success ? parsed.data : undefined
  }

  save(state: PersistedMembership): void {
    const tmp = `${this.#path}.tmp`
    const fd = openSync(tmp, 'w')
    try {
      writeSync(fd, JSON.stringify(state))
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, this.#path)
    const dir = openSync(dirname(this.#path), 'r')
    try {
      fsyncSync(dir)
    } finally {
      closeSync(dir)
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
