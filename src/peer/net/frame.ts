import { createHmac, type KeyObject, randomBytes, timingSafeEqual } from 'node:crypto'
import { PROTOCOL_VERSION } from '../protocol/index.ts'

/**
 * Datagram framing. Pure: bytes in, bytes or a drop reason out.
 *
 *   0  2  magic "HP"
 *   2  1  protocol version
 *   3  1  flags (reserved, 0)
 *   4  8  sender's wall-clock time, ms (replay window)
 *  12  8  random nonce (replay window)
 *  20  n  payload: UTF-8 JSON of one protocol message
 * end 32  HMAC-SHA256(party key, everything before it)
 */
export const MAGIC = 0x4850
export const HEADER_BYTES = 20
export const MAC_BYTES = 32
/** Well under the 65,507-byte UDP limit; the largest message (a page of 128 guests with long DNS names) takes about 45 KiB. */
export const MAX_DATAGRAM_BYTES = 60_000

export type DropReason = 'too_short' | 'too_large' | 'magic' | 'version' | 'mac' | 'stale' | 'replayed' | 'json' | 'schema' | 'unexpected'

export const DROP_REASONS: readonly DropReason[] = ['too_short', 'too_large', 'magic', 'version', 'mac', 'stale', 'replayed', 'json', 'schema', 'unexpected']

export interface Sealed {
  timestamp: number
  nonce: Buffer
  payload: Buffer
}

export function seal(key: Buffer | KeyObject, payload: Buffer, timestamp: number, nonce: Buffer = randomBytes(8)): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length + MAC_BYTES)
  out.writeUInt16BE(MAGIC, 0)
  out.writeUInt8(PROTOCOL_VERSION, 2)
  out.writeUInt8(0, 3)
  out.writeBigUInt64BE(BigInt(Math.trunc(timestamp)), 4)
  nonce.copy(out, 12, 0, 8)
  payload.copy(out, HEADER_BYTES)
  const mac = createHmac('sha256', key)
    .update(out.subarray(0, HEADER_BYTES + payload.length))
    .digest()
  mac.copy(out, HEADER_BYTES + payload.length)
  return out
}

/**
 * A key-mismatch notice: the header alone (flags = 1, no payload, no MAC),
 * with bytes 4..20 echoing the time and nonce of a datagram that failed
 * authentication. It tells a peer started with the wrong party key why
 * nobody answers. It cannot be authenticated (the two sides share no key),
 * so the receiver believes it only for a nonce it sent, and only logs it;
 * it is smaller than any datagram that can provoke it, so it amplifies
 * nothing.
 */
export const FLAG_KEY_MISMATCH = 0x01

export function keyMismatchNotice(failed: Buffer): Buffer {
  const out = Buffer.alloc(HEADER_BYTES)
  out.writeUInt16BE(MAGIC, 0)
  out.writeUInt8(PROTOCOL_VERSION, 2)
  out.writeUInt8(FLAG_KEY_MISMATCH, 3)
  failed.copy(out, 4, 4, HEADER_BYTES)
  return out
}

/** The nonce a key-mismatch notice echoes, or undefined when the datagram is not one. */
export function keyMismatchNonce(datagram: Buffer): Buffer | undefined {
  if (datagram.length !== HEADER_BYTES || datagram.readUInt16BE(0) !== MAGIC || datagram.readUInt8(2) !== PROTOCOL_VERSION) return undefined
  return datagram.readUInt8(3) === FLAG_KEY_MISMATCH ? datagram.subarray(12, 20) : undefined
}

export function open(key: Buffer | KeyObject, datagram: Buffer): Sealed | DropReason {
  if (datagram.length > MAX_DATAGRAM_BYTES) return 'too_large'
  if (datagram.length < HEADER_BYTES + MAC_BYTES + 2) return 'too_short'
  if (datagram.readUInt16BE(0) !== MAGIC) return 'magic'
  if (datagram.readUInt8(2) !== PROTOCOL_VERSION) return 'version'
  const macAt = datagram.length - MAC_BYTES
  const expected = createHmac('sha256', key).update(datagram.subarray(0, macAt)).digest()
  if (!timingSafeEqual(expected, datagram.subarray(macAt))) return 'mac'
  return {
    timestamp: Number(datagram.readBigUInt64BE(4)),
    nonce: datagram.subarray(12, 20),
    payload: datagram.subarray(HEADER_BYTES, macAt),
  }
}
