import type { z } from 'zod'
import { HousePartyError } from '../../shared/errors.ts'
import { type BatchedCall, MAX_BATCH, MAX_BATCH_BYTES, PintReplies } from '../protocol/index.ts'
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
    if (signal?.aborted) return Promise.reject(aborted(address))
    return new Promise((resolve, reject) => {
      const queued: Queued = { body, schema, chunk, signal, settled: false, resolve, reject }
      const onAbort = (): void => settle(queued, undefined, aborted(address))
      signal?.addEventListener('abort', onAbort, { once: true })
      queued.resolve = (value) => {
        signal?.removeEventListener('abort', onAbort)
        resolve(value as z.infer<S>)
      }
      queued.reject = (err) => {
        signal?.removeEventListener('abort', onAbort)
        reject(err)
      }
      const queue = this.#queues.get(address) ?? []
      queue.push(queued)
      this.#queues.set(address, queue)
      this.#kick(address)
    })
  }

  /** Sends what waits for `address` at the end of this turn of the event loop, if it may have another request under way. */
  #kick(address: string): void {
    if ((this.#busy.get(address) ?? 0) >= this.#inFlight || this.#scheduled.has(address)) return
    this.#scheduled.add(address)
    setImmediate(() => {
      this.#scheduled.delete(address)
      this.#send(address)
    })
  }

  #send(address: string): void {
    const queue = this.#queues.get(address) ?? []
    const taken: Queued[] = []
    let bytes = 0
    while (queue.length > 0 && taken.length < MAX_BATCH) {
      const next = queue[0] as Queued
      const size = next.chunk?.data.length ?? 0
      if (!next.settled && taken.length > 0 && bytes + size > MAX_BATCH_BYTES) break
      queue.shift()
      if (next.settled) continue
      taken.push(next)
      bytes += size
    }
    if (queue.length === 0) this.#queues.delete(address)
    if (taken.length === 0) return
    this.#busy.set(address, (this.#busy.get(address) ?? 0) + 1)
    void this.#exchange(address, taken).finally(() => {
      const busy = (this.#busy.get(address) ?? 1) - 1
      if (busy === 0) this.#busy.delete(address)
      else this.#busy.set(address, busy)
      if (this.#queues.has(address)) this.#kick(address)
    })
  }

  async #exchange(address: string, taken: readonly Queued[]): Promise<void> {
    try {
      if (taken.length === 1) {
        const only = taken[0] as Queued
        settle(only, await call(address, only.body, only.schema, { ...this.#dial, signal: only.signal }, chunksOf(taken)))
        return
      }
      const reply = await call(address, { op: 'batch', calls: taken.map((q) => q.body) }, PintReplies.batch, { ...this.#dial }, chunksOf(taken))
      if (reply.replies.length !== taken.length)
        throw new HousePartyError('ERR_PROTOCOL', `a batch of ${taken.length} calls got ${reply.replies.length} answers`)
      for (const [i, queued] of taken.entries()) {
        try {
          settle(queued, checkReply(reply.replies[i], queued.schema))
        } catch (err) {
          settle(queued, undefined, err as Error)
        }
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

function settle(queued: Queued, value: unknown, err?: Error): void {
  if (queued.settled) return
  queued.settled = true
  if (err) queued.reject(err)
  else queued.resolve(value)
}

function aborted(address: string): HousePartyError {
  return new HousePartyError('ERR_ABORTED', `request to ${address} aborted`)
}
