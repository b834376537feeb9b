import { HousePartyError } from '../../shared/errors.ts'
import type { Throttle } from '../../shared/throttle.ts'
import { type FilesContext, rebuildFragments, wholeFragmentBytes } from '../files/index.ts'
import type { FileRecord, FragmentRef, GuestId } from '../protocol/index.ts'
import type { FragmentSink } from '../transfer/index.ts'
import { readopted } from './plan.ts'

export interface RepairOptions {
  signal?: AbortSignal
  throttle?: Throttle
}

export interface Recorded {
  record: FileRecord
  /** False when another record won at the trackers (a newer put, or a concurrent repair): what we stored was dropped again. */
  won: boolean
}

/**
 * Rebuilds fragments `missing` of `record` from k of `sources`, stores them
 * on guests holding nothing of the file, and records the result as the next
 * revision (watchMyPint). Fragments neither missing nor sources (on a guest
 * that may come back) stay in the record as they are.
 */
export async function repairFile(
  ctx: FilesContext,
  record: FileRecord,
  sources: readonly FragmentRef[],
  missing: readonly number[],
  options: RepairOptions = {},
): Promise<Recorded> {
  if (missing.length === 0) return { record, won: true }
  // Every recorded holder is avoided: a rebuilt fragment must not land beside another of the same file, nor on a peer that may come back with its copy.
  const avoid = new Set<GuestId>(record.fragments.map((f) => f.holder))
  const rebuilt = await rebuildFragments(ctx, { ...record, fragments: [...sources] }, missing, avoid, options.signal, options.throttle)
  const gone = new Set(missing)
  const kept = record.fragments.filter((f) => !gone.has(f.index))
  const next: FileRecord = { ...record, revision: record.revision + 1, fragments: [...kept, ...rebuilt.refs].sort((a, b) => a.index - b.index) }
  let recorded: Recorded | undefined
  try {
    recorded = await publish(ctx, next, rebuilt.refs, options.signal)
    return recorded
  } finally {
    // Counted as rebuilt only if the record that names them won: two peers repairing one file (the ring moved
    // mid-repair) do the work twice, and the loser's copies are dropped and counted apart.
    ctx.events.fragmentsRebuilt(rebuilt.refs.length, rebuilt.bytes, recorded?.won === true)
  }
}

/**
 * Points fragment indices of `record` at other guests that hold the very
 * same fragment (name, version, index, digest): a copy found alive is
 * adopted, not rebuilt. Nothing moves but the record.
 */
export async function readoptFragments(ctx: FilesContext, record: FileRecord, found: readonly FragmentRef[], signal?: AbortSignal): Promise<Recorded> {
  return publish(ctx, readopted(record, found), [], signal)
}

/**
 * Copies fragment `index` of `record` from its holder to `target`, records
 * the move, then drops the old copy. Redundancy never dips: the old copy
 * stays until the new one is durable and recorded.
 */
export async function moveFragment(ctx: FilesContext, record: FileRecord, index: number, target: GuestId, options: RepairOptions = {}): Promise<Recorded> {
  const ref = record.fragments.find((f) => f.index === index)
  if (!ref) throw new HousePartyError('ERR_NOT_FOUND', `${JSON.stringify(record.name)} has no fragment ${index}`)
  if (!ctx.roster.addressOf(target)) throw new HousePartyError('ERR_GUEST_NOT_FOUND', `guest ${target} left the party`)
  const wholeBytes = wholeFragmentBytes(record.size, record.coding, ctx.inlineBytes)
  const wanted = { name: record.name, version: record.version, index, digest: ref.digest }
  const source = await ctx.fragments.source(ref.holder, wanted, 0, options.signal, wholeBytes)
  let sink: FragmentSink | undefined
  try {
    sink = await ctx.fragments.sink(
      target,
      { name: record.name, version: record.version, index, coding: record.coding },
      options.signal,
      wholeBytes !== undefined,
    )
    const chunks = source.manifest.chunks
    for (let s = 0; s < chunks.length; s++) {
      const data = await source.chunk(s)
      await options.throttle?.take(data.length, options.signal)
      await sink.write(data, Buffer.from(chunks[s] as string, 'hex'))
      if (sink.failed) throw sink.failure
    }
    const reply = await sink.finish({ size: record.size, hash: record.hash, created: record.created, digest: ref.digest })
    if (!reply) throw sink.failure ?? new HousePartyError('ERR_TRANSFER_FAILED', `fragment ${index} was not stored on ${target}`)
  } catch (err) {
    sink?.fail(err)
    throw err
  } finally {
    source.close()
  }
  const moved: FragmentRef = { index, holder: target, digest: ref.digest }
  const next: FileRecord = { ...record, revision: record.revision + 1, fragments: record.fragments.map((f) => (f.index === index ? moved : f)) }
  const recorded = await publish(ctx, next, [moved], options.signal)
  if (recorded.won) await ctx.fragments.drop(record, [ref])
  return recorded
}

/**
 * watchMyPint for a repaired or moved record, decided by the primary tracker. If another change won, the fragments
 * we just stored are dropped, except where the winner counts on that very copy (it placed the same fragment on the
 * same guest: a drop would delete its copy too). If the primary did not answer, nothing is dropped: the change may
 * have been taken, and a census drops what no record needs once it is older than --orphan-grace-ms.
 */
async function publish(ctx: FilesContext, next: FileRecord, added: readonly FragmentRef[], signal?: AbortSignal): Promise<Recorded> {
  const decided = await ctx.trackers.change(next, signal)
  if (!decided.won) {
    ctx.log.info({ name: next.name, version: next.version, revision: next.revision }, 'another change won at the primary tracker; dropping ours')
    const kept = decided.current.version === next.version ? decided.current.fragments : []
    const ours = added.filter((a) => !kept.some((f) => f.index === a.index && f.holder === a.holder))
    await ctx.fragments.drop(next, ours)
    return { record: decided.current, won: false }
  }
  return { record: next, won: true }
}
