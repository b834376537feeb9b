import { HousePartyError, toHousePartyError } from '../../shared/errors.ts'
import { type CodedStripe, fragmentBytes, fragmentDigest, StripeCoder, shardBytes } from '../codec/index.ts'
import type { FileRecord, FragmentRef, GuestId, ObjectMeta } from '../protocol/index.ts'
import { type FragmentSink, keepSinksAlive } from '../transfer/index.ts'
import { type FilesContext, keptWhole, openSinks } from './context.ts'
import { putWhole } from './put-small.ts'
import { type Rebuilt, rebuildFragments } from './rebuild.ts'
import { StripePool, stripesOf } from './stripe-pool.ts'
import { announce, type PutOptions, type PutResult, type Recorded, recordVersion } from './versions.ts'

export type { PutOptions } from './versions.ts'

/** Stripes handed to the coding worker ahead of the one being sent: enough to keep it busy while the body is read. */
const CODING_DEPTH = 4

interface InCoding {
  slot: Buffer
  coded: Promise<CodedStripe>
}

/**
 * holdMyPint for a whole file, then watchMyPint. The body is read once,
 * stripe by stripe: each stripe is encoded and its k+m shards go out to k+m
 * guests at once, so memory holds a stripe or two whatever the file size.
 *
 * A holder that fails before the data starts is replaced at once. One that
 * fails mid-stream cannot be replayed (the body is gone), so once the other
 * fragments are stored its fragment is rebuilt from them onto another guest,
 * as recovery would. The record is written to the trackers only once every
 * fragment is durable: until then readers see the previous version.
 */
export async function putFile(ctx: FilesContext, name: string, body: AsyncIterable<Uint8Array>, given: PutOptions = {}): Promise<PutResult> {
  const started = performance.now()
  let size = 0
  // What the caller's seal throws is the caller's own error (an S3 BadDigest): it reaches the caller as thrown.
  let refused: unknown
  const { seal } = given
  const options: PutOptions = seal
    ? {
        ...given,
        seal: (facts) => {
          try {
            return seal(facts)
          } catch (err) {
            refused = err
            throw err
          }
        },
      }
    : given
  try {
    const fits = (bytes: number): boolean => keptWhole(bytes, ctx.coding, ctx.inlineBytes)
    const { sizeHint } = options
    const head = sizeHint === undefined || fits(sizeHint) ? await readUpTo(body, fits) : { rest: body }
    const result =
      'whole' in head
        ? await putWhole(ctx, name, head.whole, options).then((r) => {
            size = r.size
            return r
          })
        : await put(
            ctx,
            name,
            head.rest,
            (n) => {
              size += n
            },
            options,
          )
    ctx.events.put((performance.now() - started) / 1000, size, 'ok')
    return result
  } catch (err) {
    ctx.events.put((performance.now() - started) / 1000, size, 'error')
    throw err === refused ? err : toHousePartyError(err)
  }
}

/**
 * Reads `body` as long as what was read `fits`: the whole body if it does,
 * else what was read and the rest, as one body again.
 */
async function readUpTo(body: AsyncIterable<Uint8Array>, fits: (bytes: number) => boolean): Promise<{ whole: Buffer } | { rest: AsyncIterable<Uint8Array> }> {
  const iterator = body[Symbol.asyncIterator]()
  const read: Uint8Array[] = []
  let bytes = 0
  for (;;) {
    const next = await iterator.next()
    if (next.done) return { whole: Buffer.concat(read, bytes) }
    read.push(next.value)
    bytes += next.value.length
    if (!fits(bytes)) break
  }
  async function* rest(): AsyncGenerator<Uint8Array> {
    yield* read
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value
  }
  return { rest: rest() }
}

async function put(ctx: FilesContext, name: string, body: AsyncIterable<Uint8Array>, counted: (n: number) => void, options: PutOptions): Promise<PutResult> {
  const { signal, sizeHint } = options
  const coding = ctx.coding
  const { k, m } = coding
  const version = await announce(ctx, name, signal)
  const created = ctx.clock.now()
  const indices = Array.from({ length: k + m }, (_, i) => i)
  const sinks = await openSinks(ctx, { name, version, coding }, indices, new Set(), {
    signal,
    fragmentBytes: sizeHint === undefined ? 0 : fragmentBytes(sizeHint, coding),
  })
  const chunkDigests: string[][] = indices.map(() => [])
  const pool = StripePool.of(shardBytes(coding.stripeBytes, k) * (k + m))
  let coder: StripeCoder | undefined
  // Stripes being coded by the worker while the next ones are read from the body and the previous ones sent.
  const inCoding: InCoding[] = []
  const send = async (stripe: InCoding): Promise<void> => {
    const { shards, checksums } = await stripe.coded
    for (const [i, c] of checksums.entries()) chunkDigests[i]?.push(c.toString('hex'))
    // The slot goes back to the pool once every sink has flushed its shard of it.
    let unflushed = sinks.length
    const flushed = (): void => {
      if (--unflushed === 0) pool.give(stripe.slot)
    }
    await Promise.all(sinks.map((sink) => sink.write(shards[sink.index] as Buffer, checksums[sink.index] as Buffer, flushed)))
    if (sinks.filter((s) => s.failed).length > m) throw tooManyFailed(sinks, m)
  }
  let size = 0
  let contentHash: string
  let meta: ObjectMeta | undefined
  // The body may come slowly (a client on a slow link): the holders hear from us meanwhile.
  const stopKeepAlive = keepSinksAlive(sinks)
  try {
    coder = await StripeCoder.open(k, m, { md5: options.md5 === true })
    for await (const { slot, length } of stripesOf(body, coding.stripeBytes, () => pool.take())) {
      signal?.throwIfAborted()
      size += length
      counted(length)
      const coded = coder.code(slot, length)
      // Awaited in order below; until then a failure must not count as unhandled.
      coded.catch(() => undefined)
      inCoding.push({ slot, coded })
      if (inCoding.length >= CODING_DEPTH) await send(inCoding.shift() as InCoding)
    }
    for (let next = inCoding.shift(); next; next = inCoding.shift()) await send(next)
    const digests = await coder.finish()
    contentHash = digests.sha256
    meta = options.seal?.({ size, hash: contentHash, ...(digests.md5 === undefined ? {} : { md5: digests.md5 }) })
  } catch (err) {
    coder?.close()
    for (const sink of sinks) sink.fail(err)
    throw err
  } finally {
    stopKeepAlive()
  }

  const fragments: FragmentRef[] = []
  await Promise.all(
    sinks.map(async (sink) => {
      const digest = fragmentDigest(chunkDigests[sink.index] ?? [])
      const reply = await sink.finish({ size, hash: contentHash, created, digest })
      if (reply) fragments.push({ index: sink.index, holder: sink.holder as GuestId, digest })
    }),
  )
  const record: FileRecord = { name, version, revision: 0, deleted: false, size, hash: contentHash, created, coding, fragments }
  if (meta) record.meta = meta
  const failed = sinks.filter((s) => s.failed)
  if (failed.length > m) {
    await ctx.fragments.drop(record, record.fragments)
    throw tooManyFailed(sinks, m)
  }
  let repaired: Rebuilt | undefined
  if (failed.length > 0) {
    ctx.log.warn(
      { name, version, failed: failed.map((s) => ({ index: s.index, holder: s.holder, err: s.failure?.message })) },
      'rebuilding fragments whose transfer failed',
    )
    try {
      const rebuilt = await rebuildFragments(
        ctx,
        record,
        failed.map((s) => s.index),
        new Set(failed.map((s) => s.holder as GuestId)),
        signal,
      )
      repaired = rebuilt
      for (const ref of rebuilt.refs) {
        if (ref.digest !== fragmentDigest(chunkDigests[ref.index] ?? []))
          throw new HousePartyError('ERR_INTERNAL', `rebuilt fragment ${ref.index} differs from the original`)
      }
      record.fragments.push(...rebuilt.refs)
    } catch (err) {
      if (repaired) ctx.events.fragmentsRebuilt(repaired.refs.length, repaired.bytes, false)
      await ctx.fragments.drop(record, record.fragments)
      throw err
    }
  }
  record.fragments.sort((a, b) => a.index - b.index)
  let recorded: Recorded
  try {
    recorded = await recordVersion(ctx, record, signal)
  } catch (err) {
    if (repaired) ctx.events.fragmentsRebuilt(repaired.refs.length, repaired.bytes, false)
    throw err
  }
  if (repaired) ctx.events.fragmentsRebuilt(repaired.refs.length, repaired.bytes, !recorded.superseded)
  return { name, version, size, hash: contentHash, current: recorded.current }
}

function tooManyFailed(sinks: readonly FragmentSink[], m: number): HousePartyError {
  const failed = sinks.filter((s) => s.failed)
  return new HousePartyError(
    'ERR_TRANSFER_FAILED',
    `${failed.length} of ${sinks.length} fragment transfers failed, at most ${m} can be rebuilt: ${failed.map((s) => s.failure?.message).join('; ')}`,
    { details: { failed: failed.length, tolerated: m } },
  )
}
