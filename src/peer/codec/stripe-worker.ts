import { createHash, type Hash } from 'node:crypto'
import { parentPort } from 'node:worker_threads'
import { crc32 } from 'node:zlib'
import { ErasureCoder } from './erasure.ts'
import type { CoderReply, CoderRequest } from './stripe-coder.ts'
import { shardBytes } from './stripes.ts'

/**
 * The CPU work of a put, off the event loop: for each stripe, the file hash
 * (and its MD5, for an S3 ETag), the parity shards and every shard's CRC-32, all in the stripe's shared
 * slot. Stripes of one put arrive in order, so the hash sees the file's
 * bytes in order.
 */
interface Session {
  hash: Hash
  md5: Hash | undefined
  coder: ErasureCoder
}

const sessions = new Map<number, Session>()

function handle(req: CoderRequest): CoderReply {
  switch (req.op) {
    case 'open':
      sessions.set(req.session, { hash: createHash('sha256'), md5: req.md5 ? createHash('md5') : undefined, coder: new ErasureCoder(req.k, req.m) })
      return { session: req.session, seq: req.seq }
    case 'stripe': {
      const s = sessionOf(req.session)
      const { k, m } = s.coder
      const slot = Buffer.from(req.slot, req.offset, req.capacity)
      s.hash.update(slot.subarray(0, req.length))
      s.md5?.update(slot.subarray(0, req.length))
      const shard = shardBytes(req.length, k)
      slot.fill(0, req.length, shard * k)
      const shards = Array.from({ length: k + m }, (_, i) => slot.subarray(i * shard, (i + 1) * shard))
      s.coder.encodeInto(shards.slice(0, k), shards.slice(k))
      return { session: req.session, seq: req.seq, checksums: shards.map((x) => crc32(x)) }
    }
    case 'finish': {
      const s = sessionOf(req.session)
      sessions.delete(req.session)
      return { session: req.session, seq: req.seq, hash: s.hash.digest('hex'), ...(s.md5 ? { md5: s.md5.digest('hex') } : {}) }
    }
    case 'close':
      sessions.delete(req.session)
      return { session: req.session, seq: req.seq }
  }
}

function sessionOf(id: number): Session {
  const s = sessions.get(id)
  if (!s) throw new Error(`no coding session ${id}`)
  return s
}

parentPort?.on('message', (req: CoderRequest) => {
  let reply: CoderReply
  try {
    reply = handle(req)
  } catch (err) {
    reply = { session: req.session, seq: req.seq, error: (err as Error).message }
  }
  parentPort?.postMessage(reply)
})
