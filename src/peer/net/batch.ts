import type { z } from 'zod'
import { HousePartyError } from '../../shared/errors.ts'
import { type BatchedCall, bytesAfter, MAX_BATCH, MAX_BATCH_BYTES, type PintOp, PintReplies } from '../protocol/index.ts'
import { call, type DialOptions } from './dial.ts'
import { checkReply, type PintChannel } from './tcp.ts'

/** A stash's fragment bytes and their CRC-32 (none for an empty file): sent after the request frame. */
export interface StashChunk {
  data: Buffer
  checksum: Buffer | undefined
}

export interface CallBatcherOptions {
  dial: Omit<DialOptions, 'signal'>
  /** Requests under way to one address at once; calls made meanwhile wait and leave together in the next. */
  inFlight?: number
}

interface Queued {
  body: BatchedCall
  schema: z.ZodType
  chunk: StashChunk | undefined
  /** A call bytes follow the reply of (a fetch, a where that brings a fragment): at most this many; it resolves to the reply with them. */
  maxBytes: number | undefined
  address: string
  signal: AbortSignal | undefined
  settled: boolean
  resolve(value: unknown): void
  reject(err: Error): void
}

/**
 * Small calls to one guest (stash, watch, where) gathered into one request.
 * A burst of small puts makes several such calls to every guest per put,
 * and each request costs both sides more than the work it carries: a
 * frame to authenticate and parse, a socket write each way, a commit of
 * its own. Calls leave at once while the address has fewer than
 * `inFlight` requests under way; those made meanwhile wait for one to end
 * and leave together, in one frame, answered in one reply (as a group
 * commit shares one fsync). A lone call goes as itself.
 *
 * A call whose signal aborts is rejected at once; if its request already
 * left, the holder may still do it (every batched op is safe to repeat).
 */
export class CallBatcher {
  readonly #dial: Omit<DialOptions, 'signal'>
  readonly #inFlight: number
  readonly #queues = new Map<string, Queued[]>()
  readonly #busy = new Map<string, number>()
  readonly #scheduled = new Set<string>()

  constructor(options: CallBatcherOptions) {
    this.#dial = options.dial
    this.#inFlight = options.inFlight ?? 2
  }

  /** One call to `address`, alone or batched with others; `chunk` is a stash's fragment bytes. */
  call<S extends z.ZodType>(address: string, body: BatchedCall, schema: S, signal?: AbortSignal, chunk?: StashChunk): Promise<z.infer<S>> {
    return this.#enqueue(address, body, schema, signal, chunk, undefined)
  }

  /**
   * A call whose reply bytes may follow (a fetch of a whole small fragment, a where that brings one), alone or
   * batched with others of its kind: its reply, and the bytes (at most `maxBytes`: see bytesAfter) after it. They
   * leave in batches of their own, so a holder that predates fetches in batches refuses only those (and the
   * caller fetches again, unbatched), never a put's calls.
   */
  callForBytes<S extends z.ZodType>(
    address: string,
    body: Extract<BatchedCall, { op: 'fetch' | 'where' }>,
    schema: S,
    maxBytes: number,
    signal?: AbortSignal,
  ): Promise<{ reply: z.infer<S>; data: Buffer }> {
    return this.#enqueue(address, body, schema, signal, undefined, maxBytes)
  }

  #enqueue<T>(
    address: string,
    body: BatchedCall,
    schema: z.ZodType,
    signal: AbortSignal | undefined,
    chunk: StashChunk | undefined,
    maxBytes: number | undefined,
  ): Promise<T> {
    if (signal?.aborted) return Promise.reject(aborted(address))
    return new Promise((resolve, reject) => {
      const queued: Queued = { body, schema, chunk, maxBytes, address, signal, settled: false, resolve, reject }
      const onAbort = (): void => settle(queued, undefined, aborted(address))
      signal?.addEventListener('abort', onAbort, { once: true })
      queued.resolve = (value) => {
        signal?.removeEventListener('abort', onAbort)
        resolve(value as T)
      }
      queued.reject = (err) => {
        signal?.removeEventListener('abort', onAbort)
        reject(err)
      }
      const lane = maxBytes === undefined ? address : `${address} fetch`
      const queue = this.#queues.get(lane) ?? []
      queue.push(queued)
      this.#queues.set(lane, queue)
      this.#kick(lane)
    })
  }

  /** Sends what waits in `lane` (an address, or its calls that bring bytes) at the end of this turn of the event loop, if it may have another request under way. */
  #kick(lane: string): void {
    if ((this.#busy.get(lane) ?? 0) >= this.#inFlight || this.#scheduled.has(lane)) return
    this.#scheduled.add(lane)
    setImmediate(() => {
      this.#scheduled.delete(lane)
      this.#send(lane)
    })
  }

  #send(lane: string): void {
    const queue = this.#queues.get(lane) ?? []
    const taken: Queued[] = []
    let bytes = 0
    while (queue.length > 0 && taken.length < MAX_BATCH) {
      const next = queue[0] as Queued
      const size = next.chunk?.data.length ?? next.maxBytes ?? 0
      if (!next.settled && taken.length > 0 && bytes + size > MAX_BATCH_BYTES) break
      queue.shift()
      if (next.settled) continue
      taken.push(next)
      bytes += size
    }
    if (queue.length === 0) this.#queues.delete(lane)
    const first = taken[0]
    if (!first) return
    this.#busy.set(lane, (this.#busy.get(lane) ?? 0) + 1)
    void this.#exchange(first.address, taken).finally(() => {
      const busy = (this.#busy.get(lane) ?? 1) - 1
      if (busy === 0) this.#busy.delete(lane)
      else this.#busy.set(lane, busy)
      if (this.#queues.has(lane)) this.#kick(lane)
    })
  }

  async #exchange(address: string, taken: readonly Queued[]): Promise<void> {
    try {
      if (taken.length === 1) {
        const only = taken[0] as Queued
        const afterReply =
          only.maxBytes === undefined ? undefined : (reply: unknown, channel: PintChannel) => withBytes(only.body.op, reply, channel, only.maxBytes as number)
        settle(only, await call(address, only.body, only.schema, { ...this.#dial, signal: only.signal }, { ...chunksOf(taken), afterReply }))
        return
      }
      const answers = await call(
        address,
        { op: 'batch', calls: taken.map((q) => q.body) },
        PintReplies.batch,
        { ...this.#dial },
        {
          ...chunksOf(taken),
          afterReply: (reply, channel) => answersOf(taken, reply.replies, channel),
        },
      )
      for (const [i, queued] of taken.entries()) {
        const answer = answers[i] as Answer
        settle(queued, answer.value, answer.error)
      }
    } catch (err) {
      for (const queued of taken) settle(queued, undefined, err as Error)
    }
  }
}

/** Writes the stashes' chunks after the request frame, in the order of the calls. */
function chunksOf(taken: readonly Queued[]): { payload?: (channel: PintChannel) => Promise<void> } {
  const stashes = taken.filter((q) => q.body.op === 'stash')
  if (stashes.length === 0) return {}
  return {
    payload: async (channel) => {
      for (const { chunk } of stashes) await channel.writeWholeChunk(chunk?.data ?? Buffer.alloc(0), chunk?.checksum)
    },
  }
}

type Answer = { value: unknown; error?: undefined } | { value?: undefined; error: Error }

/**
 * Each call's answer in a batch reply, the bytes of its fetches (and wheres) read off the connection in call order
 * (they follow the reply frame). A failed call has no bytes; one answered ok but malformed fails the whole batch, since
 * the bytes after it can no longer be told apart.
 */
async function answersOf(taken: readonly Queued[], replies: readonly unknown[], channel: PintChannel): Promise<Answer[]> {
  if (replies.length !== taken.length) throw new HousePartyError('ERR_PROTOCOL', `a batch of ${taken.length} calls got ${replies.length} answers`)
  const answers: Answer[] = []
  let room = MAX_BATCH_BYTES
  for (const [i, queued] of taken.entries()) {
    const raw = replies[i]
    const carriesBytes = queued.maxBytes !== undefined && typeof raw === 'object' && raw !== null && (raw as { ok?: unknown }).ok === true
    if (!carriesBytes) {
      try {
        answers.push({ value: checkReply(raw, queued.schema) })
      } catch (err) {
        answers.push({ error: err as Error })
      }
      continue
    }
    const reply = checkReply(raw, queued.schema)
    const limit = Math.min(queued.maxBytes as number, room)
    const value = await withBytes(queued.body.op, reply, channel, limit)
    room -= value.data.length
    answers.push({ value })
  }
  return answers
}

/** A reply with the bytes that follow it (bytesAfter); more than `maxBytes` is a protocol violation. */
export async function withBytes<R>(op: PintOp, reply: R, channel: PintChannel, maxBytes: number): Promise<{ reply: R; data: Buffer }> {
  const bytes = bytesAfter(op, reply)
  if (!Number.isInteger(bytes) || bytes < 0 || bytes > maxBytes) {
    throw new HousePartyError('ERR_PROTOCOL', `a ${op} announced ${bytes} bytes, more than the ${maxBytes} it may carry`)
  }
  return { reply, data: await channel.reader.read(bytes) }
}

function settle(queued: Queued, value: unknown, err?: Error): void {
  if (queued.settled) return
  queued.settled = true
  if (err) queued.reject(err)
  else queued.resolve(value)
}

function aborted(address: string): HousePartyError {
  return new HousePartyError('ERR_ABORTED', `request to ${address} aborted`)
}
