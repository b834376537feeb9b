import { isHousePartyError } from '../../shared/errors.ts'
import type { Logger } from '../../shared/logger.ts'
import type { Throttle } from '../../shared/throttle.ts'
import type { FilesContext } from '../files/index.ts'
import type { FileRecord, FragmentRef, GuestId } from '../protocol/index.ts'
import { compareRecords } from '../tracker/index.ts'
import type { Census, Copy } from './census.ts'
import type { Plan, Repair } from './plan.ts'
import { moveFragment, readoptFragments, repairFile } from './repair.ts'

export interface RecoveryEvents {
  /** A degraded file is back to k+m fragments; seconds since this peer first saw it degraded. */
  recovered(seconds: number): void
  moved(reason: 'leave' | 'rebalance' | 'spread'): void
  orphanDropped(): void
  recordRebuilt(): void
  /** A fragment found on a live guest was recorded there instead of being rebuilt. */
  readopted(): void
  /** A census by digest: parts compared, parts that differed, fragments listed for them. */
  census(exchanged: { parts: number; differing: number; listed: number }): void
  /** A pass read `count` records: every record of the arc (`full`), or those that changed and those where a guest differed (`changes`). */
  recordsRead(pass: 'full' | 'changes', count: number): void
  /** A tracker handoff sent `sent` records to other trackers and took `taken` newer ones from them. */
  recordsHanded(sent: number, taken: number): void
  /** Files this peer is primary tracker of (deleted ones left out), those below k+m usable fragments, and those below k. */
  health(files: number, degraded: number, lost: number): void
  /** After a full pass: of the files this peer is primary of, how many the loss of the worst region, zone or node alone would make unreadable. */
  atRisk(files: { region: number; zone: number; node: number }): void
}

/** What carrying a plan out needs: the data plane, where to report, and how much it may do at once. */
export interface CarryOut {
  ctx: FilesContext
  /** Whether the plan still holds: see carryOut. */
  current(): boolean
  log: Logger
  events: RecoveryEvents
  throttle: Throttle
  /** Files repaired at once. */
  concurrency: number
  signal: AbortSignal
  /** A repaired file is whole again. */
  repaired(name: string): void
}

/**
 * Carries a recovery plan out, in its order: re-adoptions and restored
 * records first (they only change records), then drops, repairs and moves.
 * Each step that loses at the trackers (another change won) is left for the
 * next pass. Returns how many planned repairs left their file degraded.
 *
 * Re-adoptions, restorations, drops and moves stop once the plan is out of
 * date (`env.current`): the guest list changed (a holder it counted on may
 * be gone), or this peer's picture may be stale (it was paused, or voted
 * out and admitted again: its records then call the copies rebuilt
 * meanwhile extra ones). Repairs check the record with every tracker before
 * they act, and go on.
 */
export async function carryOut(decided: Plan, env: CarryOut): Promise<number> {
  const current = (): boolean => !env.signal.aborted && env.current()
  for (const adoption of decided.adoptions) {
    if (!current()) break
    await readopt(env, adoption.record, adoption.found)
  }
  for (const copies of decided.restorations) {
    if (!current()) break
    await restore(env, copies).catch((err) => env.log.warn({ err: (err as Error).message }, 'could not restore a lost tracker record'))
  }
  if (env.signal.aborted) return decided.repairs.length
  const drops = current() ? decided.drops : []
  await Promise.all(
    drops.map(async ({ holder, fragment }) => {
      // Only the copy the census saw: the holder may have been sent the very same fragment again since (a move or a
      // handoff chose it), and that copy a record now counts on.
      await env.ctx.fragments.drop(fragment, [{ index: fragment.index, holder, digest: fragment.digest }], env.signal, fragment.stored)
      env.events.orphanDropped()
    }),
  )
  if (drops.length > 0) env.log.info({ fragments: drops.length }, 'dropped fragments no record needs')
  if (decided.repairs.length > 0) {
    env.log.info({ files: decided.repairs.length, degraded: decided.health.degraded.size, lost: decided.health.lost }, 'repairing degraded files')
    return repairAll(env, decided.repairs)
  }
  for (const move of decided.moves) {
    if (!current()) break
    try {
      const { won } = await moveFragment(env.ctx, move.record, move.index, move.to, { signal: env.signal, throttle: env.throttle })
      if (!won) break
      env.events.moved(move.reason)
      const why = move.reason === 'spread' ? 'fragment moved to a failure domain its file lacked' : 'fragment moved to even out the guests'
      env.log.info({ name: move.record.name, index: move.index, from: move.from, to: move.to, bytes: move.bytes }, why)
    } catch (err) {
      env.log.warn({ name: move.record.name, reason: move.reason, err: (err as Error).message }, 'fragment move failed')
      break
    }
  }
  return 0
}

async function readopt(env: CarryOut, record: FileRecord, found: readonly FragmentRef[]): Promise<void> {
  try {
    const result = await readoptFragments(env.ctx, record, found, env.signal)
    if (!result.won) return
    for (const _ of found) env.events.readopted()
    env.log.info(
      { name: record.name, fragments: found.map((f) => ({ index: f.index, holder: f.holder })) },
      'fragments found on live guests; recorded there, nothing rebuilt',
    )
  } catch (err) {
    env.log.debug({ name: record.name, err: (err as Error).message }, 'could not re-adopt fragments; trying again on the next census')
  }
}

/** Fragments of a file no tracker knows: rebuild its record from their manifests (unless a replica has it after all). */
async function restore(env: CarryOut, copies: readonly Copy[]): Promise<void> {
  const first = (copies[0] as Copy).fragment
  const known = await env.ctx.trackers.where(first.name, env.signal).catch(() => undefined)
  if (known && known.version >= first.version) return
  const byIndex = new Map<number, FragmentRef>()
  for (const { holder, fragment } of copies)
    if (!byIndex.has(fragment.index)) byIndex.set(fragment.index, { index: fragment.index, holder, digest: fragment.digest })
  const record: FileRecord = {
    name: first.name,
    version: first.version,
    revision: 0,
    deleted: false,
    size: first.size,
    hash: first.hash,
    created: first.created,
    coding: first.coding,
    fragments: [...byIndex.values()].sort((a, b) => a.index - b.index),
  }
  await env.ctx.trackers.watch(record, env.signal)
  env.events.recordRebuilt()
  env.log.warn(
    { name: record.name, version: record.version, fragments: record.fragments.length },
    'rebuilt a lost tracker record from the manifests of its fragments',
  )
}

/** Repairs in the plan's order (fewest surviving fragments first), a few at a time. Returns how many are still degraded. */
async function repairAll(env: CarryOut, repairs: readonly Repair[]): Promise<number> {
  let failed = 0
  const queue = [...repairs]
  const worker = async (): Promise<void> => {
    for (let job = queue.shift(); job && !env.signal.aborted; job = queue.shift()) {
      if (!(await repair(env, job))) failed++
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, env.concurrency) }, worker))
  return failed + queue.length
}

/**
 * True when this repair made the file whole again. A repair not done (the ring moved and another guest is primary
 * now, or the record changed since the plan) leaves the file counted degraded: whoever looks at it next says whether
 * it still is. Counting it whole would let the party report full redundancy while nobody has repaired it yet.
 */
async function repair(env: CarryOut, job: Repair): Promise<boolean> {
  const { ctx, log } = env
  const { name } = job.record
  // The ring may have moved since the pass began: the new primary takes the file over.
  if (ctx.trackers.trackersOf(name)[0] !== ctx.roster.selfId) return false
  try {
    // The newest record from every replica: a put or another repair may have moved on since the plan.
    const fresh = await ctx.trackers.where(name, env.signal)
    if (!fresh || compareRecords(fresh, job.record) !== 0) return false
    const { ok, missing, away, unknown } = job.assessment
    const result = await repairFile(ctx, job.record, ok, missing, { signal: env.signal, throttle: env.throttle })
    // Fully redundant only when nothing else is away or unknown; otherwise a later pass finishes the file.
    const whole = result.won && away.length === 0 && unknown.length === 0
    if (whole) env.repaired(name)
    log.info({ name, version: job.record.version, revision: result.record.revision, won: result.won, rebuilt: missing.length }, 'file repaired')
    return whole
  } catch (err) {
    if (!isHousePartyError(err, 'ERR_ABORTED')) log.warn({ name, err: (err as Error).message }, 'repair failed; retrying on the next pass')
    return false
  }
}

/** Whether the guest list `now` is the one a plan was made on. */
export function sameGuests(now: readonly { id: GuestId }[], planned: readonly GuestId[]): boolean {
  return now.length === planned.length && now.every((g, i) => g.id === planned[i])
}

/** What planning and carrying out one set of records found. */
export interface PassOutcome {
  /** Files found degraded (a count, not the names: a pass over a million files may find hundreds of thousands). */
  degraded: number
  lost: number
  /** Degraded files repaired by this pass. */
  repaired: number
  /** Degraded files left for a second walk (they were not at risk: see Plan.deferred). */
  deferred: number
  moves: number
  nothingToDo: boolean
  /** Nothing left waiting: nothing degraded, lost, due later or unknown, and no moves (see Caretaker's baseline). */
  clean: boolean
}

/** What carrying out `decided` found, `stillDegraded` of its repairs having failed; `census` when the pass took one. */
export function outcomeOf(decided: Plan, stillDegraded: number, census: Census | undefined): PassOutcome {
  const { health, wakeAt } = decided
  const waiting = health.degraded.size > 0 || health.lost > 0 || wakeAt !== undefined
  const changes = decided.adoptions.length + decided.restorations.length + decided.drops.length + decided.repairs.length + decided.moves.length
  return {
    degraded: health.degraded.size,
    lost: health.lost,
    repaired: decided.repairs.length - stillDegraded,
    deferred: decided.deferred,
    moves: decided.moves.length,
    nothingToDo: changes === 0 && !waiting,
    // Moves mean the guests are uneven: the next pass picks more of them from every record, not only those it read.
    clean: !waiting && decided.moves.length === 0 && (census?.silent.size ?? 1) === 0,
  }
}

/** Adds one chunk's outcome to the pass's. */
export function addOutcome(total: PassOutcome, chunk: PassOutcome): void {
  total.degraded += chunk.degraded
  total.lost += chunk.lost
  total.repaired += chunk.repaired
  total.deferred += chunk.deferred
  total.moves += chunk.moves
  total.nothingToDo &&= chunk.nothingToDo
  total.clean &&= chunk.clean
}
