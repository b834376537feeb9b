import { Worker } from 'node:worker_threads'
import { HousePartyError } from '../../shared/errors.ts'
import { shardBytes } from './stripes.ts'

/** Messages to the coding worker (stripe-worker.ts) and its answers. */
type CoderOp =
  | { op: 'open'; k: number; m: number; md5?: boolean }
  | { op: 'stripe'; slot: SharedArrayBuffer; offset: number; capacity: number; length: number }
  | { op: 'finish' }
  | { op: 'close' }

export type CoderRequest = CoderOp & { session: number; seq: number }

export interface CoderReply {
  session: number
  seq: number
  checksums?: number[]
  hash?: string
  md5?: string
  error?: string
}

/** A stripe coded in its slot: shard i is `shards[i]`, its CRC-32 `checksums[i]`. */
export interface CodedStripe {
  shards: Buffer[]
  checksums: Buffer[]
}

/**
 * Stripe slots live in shared memory so the worker codes them in place:
 * nothing is copied between threads.
 */
export function sharedSlot(bytes: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(bytes))
}

/**
 * One put's coding, done by a worker thread: the file's sha256, the parity
 * shards and the chunk checksums. The event loop only moves bytes, so on a
 * busy peer a put keeps two cores working instead of one.
 */
export class StripeCoder {
  readonly #k: number
  readonly #m: number
  readonly #session: number
  #closed = false

  private constructor(k: number, m: number, session: number) {
    this.#k = k
    this.#m = m
    this.#session = session
  }

  /** With `md5`, the worker hashes the bytes with MD5 as well (an S3 ETag), beside the sha256. */
  static async open(k: number, m: number, options: { md5?: boolean } = {}): Promise<StripeCoder> {
    const session = nextSession++
    await pool().request(session, { op: 'open', k, m, ...(options.md5 ? { md5: true } : {}) })
    return new StripeCoder(k, m, session)
  }

  /**
   * Codes the stripe in `slot[0, length)`; the slot must be shared (see
   * sharedSlot) and hold k+m shards. Stripes must be given in file order.
   */
  async code(slot: Buffer, length: number): Promise<CodedStripe> {
    const buffer = slot.buffer
    if (!(buffer instanceof SharedArrayBuffer)) throw new HousePartyError('ERR_INTERNAL', 'stripe slots must be shared memory')
    const shard = shardBytes(length, this.#k)
    if (shard * (this.#k + this.#m) > slot.length) throw new HousePartyError('ERR_INTERNAL', 'stripe slot too small')
    const reply = await pool().request(this.#session, { op: 'stripe', slot: buffer, offset: slot.byteOffset, capacity: slot.length, length })
    const checksums = (reply.checksums ?? []).map((c) => {
      const out = Buffer.allocUnsafe(4)
      out.writeUInt32BE(c, 0)
      return out
    })
    const shards = Array.from({ length: this.#k + this.#m }, (_, i) => slot.subarray(i * shard, (i + 1) * shard))
    return { shards, checksums }
  }

  /** The sha256 (and the MD5, when asked for at open) of every byte coded, in hex; ends the session. */
  async finish(): Promise<{ sha256: string; md5?: string }> {
    this.#closed = true
    const reply = await pool().request(this.#session, { op: 'finish' })
    return { sha256: reply.hash ?? '', ...(reply.md5 === undefined ? {} : { md5: reply.md5 }) }
  }

  /** Ends the session without a result (a failed put). */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    pool()
      .request(this.#session, { op: 'close' })
      .catch(() => undefined)
  }
}

let nextSession = 1

/** The one coding worker of this process, started on first use. */
class CoderThread {
  #worker: Worker | undefined
  #seq = 0
  readonly #pending = new Map<number, { resolve: (r: CoderReply) => void; reject: (e: Error) => void }>()

  request(session: number, op: CoderOp): Promise<CoderReply> {
    const worker = this.#start()
    const seq = ++this.#seq
    return new Promise<CoderReply>((resolve, reject) => {
      this.#pending.set(seq, { resolve, reject })
      // While a request is out the worker keeps the process alive; idle, it does not.
      if (this.#pending.size === 1) worker.ref()
      const req: CoderRequest = { ...op, session, seq }
      worker.postMessage(req)
    })
  }

  #start(): Worker {
    if (this.#worker) return this.#worker
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js'
    const worker = new Worker(new URL(`./stripe-worker.${ext}`, import.meta.url))
    worker.unref()
    worker.on('message', (reply: CoderReply) => {
      const waiter = this.#pending.get(reply.seq)
      if (!waiter) return
      this.#pending.delete(reply.seq)
      if (this.#pending.size === 0) worker.unref()
      if (reply.error) waiter.reject(new HousePartyError('ERR_INTERNAL', `coding failed: ${reply.error}`))
      else waiter.resolve(reply)
    })
    // A dead worker fails what it was doing; the next request starts a new one.
    const fail = (err: Error): void => {
      if (this.#worker === worker) this.#worker = undefined
      for (const waiter of this.#pending.values()) waiter.reject(new HousePartyError('ERR_INTERNAL', `coding worker stopped: ${err.message}`))
      this.#pending.clear()
    }
    worker.on('error', fail)
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)))
    this.#worker = worker
    return worker
  }
}

let thread: CoderThread | undefined
function pool(): CoderThread {
  thread ??= new CoderThread()
  return thread
}
