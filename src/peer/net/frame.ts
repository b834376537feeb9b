import { createCipheriv, createDecipheriv, createHmac, createSecretKey, hkdfSync, type KeyObject, randomBytes, timingSafeEqual } from 'node:crypto'
import { PROTOCOL_VERSION } from '../protocol/index.ts'

/**
 * Datagram framing. Pure: bytes in, bytes or a drop reason out.
 *
 *   0  2  magic "HP"
 *   2  1  protocol version
 *   3  1  flags: 0x02 sealed (encrypted), 0x01 key-mismatch notice
 *   4  8  sender's wall-clock time, ms (replay window)
 *  12  8  random nonce (replay window)
 *  20  n  payload: UTF-8 JSON of one protocol message, encrypted when sealed
 * end     sealed: the 16-byte ChaCha20-Poly1305 tag (the header is its associated data);
 *         else 32 bytes of HMAC-SHA256(party key, everything before it), as earlier releases send
 *
 * A sealed datagram is encrypted under a key of its own, derived (HKDF-SHA256)
 * from the party's datagram key and the datagram's time and nonce: a nonce
 * can never repeat under one key however many datagrams a party sends, so
 * the cipher's nonce is fixed at zero.
 */
export const MAGIC = 0x4850
export const HEADER_BYTES = 20
export const MAC_BYTES = 32
export const TAG_BYTES = 16
export const FLAG_SEALED = 0x02
const ZERO_NONCE = Buffer.alloc(12)

/** The keys a party key gives datagrams: the HMAC key of plain frames (the party key itself) and the sealing key. */
export class FrameKey {
  readonly mac: KeyObject
  readonly #seal: Buffer

  constructor(partyKey: Buffer) {
    this.mac = createSecretKey(partyKey)
    this.#seal = Buffer.from(hkdfSync('sha256', partyKey, Buffer.alloc(0), 'houseparty datagram seal v1', 32))
  }

  /** The key of one sealed datagram, from its time and nonce (header bytes 4..20). */
  datagramKey(header: Buffer): Buffer {
    return Buffer.from(hkdfSync('sha256', this.#seal, header.subarray(4, HEADER_BYTES), 'houseparty datagram', 32))
  }
}

const asKey = (key: FrameKey | Buffer): FrameKey => (key instanceof FrameKey ? key : new FrameKey(key))
/** Well under the 65,507-byte UDP limit; the largest message (a page of 128 guests with long DNS names) takes about 45 KiB. */
export const MAX_DATAGRAM_BYTES = 60_000

/** Why a datagram was dropped; `plain`: authentic, but not encrypted, while the party requires encryption (--peer-encryption). */
export type DropReason = 'too_short' | 'too_large' | 'magic' | 'version' | 'mac' | 'plain' | 'stale' | 'replayed' | 'json' | 'schema' | 'unexpected'

export const DROP_REASONS: readonly DropReason[] = [
  'too_short',
  'too_large',
  'magic',
  'version',
  'mac',
  'plain',
  'stale',
  'replayed',
  'json',
  'schema',
  'unexpected',
]

export interface Sealed {
  timestamp: number
  nonce: Buffer
  payload: Buffer
}

/** Frames `payload`: sealed (encrypted and authenticated, the default), or plain and HMAC-authenticated as earlier releases send. */
export function seal(key: FrameKey | Buffer, payload: Buffer, timestamp: number, nonce: Buffer = randomBytes(8), sealed = true): Buffer {
  const keys = asKey(key)
  const header = Buffer.allocUnsafe(HEADER_BYTES)
  header.writeUInt16BE(MAGIC, 0)
  header.writeUInt8(PROTOCOL_VERSION, 2)
  header.writeUInt8(sealed ? FLAG_SEALED : 0, 3)
  header.writeBigUInt64BE(BigInt(Math.trunc(timestamp)), 4)
  nonce.copy(header, 12, 0, 8)
  if (sealed) {
    const cipher = createCipheriv('chacha20-poly1305', keys.datagramKey(header), ZERO_NONCE, { authTagLength: TAG_BYTES })
    cipher.setAAD(header, { plaintextLength: payload.length })
    return Buffer.concat([header, cipher.update(payload), cipher.final(), cipher.getAuthTag()])
  }
  const out = Buffer.concat([header, payload, Buffer.alloc(MAC_BYTES)])
  createHmac('sha256', keys.mac)
    .update(out.subarray(0, HEADER_BYTES + payload.length))
    .digest()
    .copy(out, HEADER_BYTES + payload.length)
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

/**
 * Checks and opens a datagram. A plain (HMAC-authenticated, unencrypted) one
 * is taken only when `plain` allows it (a party migrating from an earlier
 * release); under another key it is still 'mac', so a peer with the wrong
 * key is told apart from one of an earlier release.
 */
export function open(key: FrameKey | Buffer, datagram: Buffer, plain = false): Sealed | DropReason {
  if (datagram.length > MAX_DATAGRAM_BYTES) return 'too_large'
  if (datagram.length < HEADER_BYTES + TAG_BYTES + 2) return 'too_short'
  if (datagram.readUInt16BE(0) !== MAGIC) return 'magic'
  if (datagram.readUInt8(2) !== PROTOCOL_VERSION) return 'version'
  const keys = asKey(key)
  const header = datagram.subarray(0, HEADER_BYTES)
  let payload: Buffer
  if (datagram.readUInt8(3) === FLAG_SEALED) {
    const tagAt = datagram.length - TAG_BYTES
    try {
      const decipher = createDecipheriv('chacha20-poly1305', keys.datagramKey(header), ZERO_NONCE, { authTagLength: TAG_BYTES })
      decipher.setAAD(header, { plaintextLength: tagAt - HEADER_BYTES })
      decipher.setAuthTag(datagram.subarray(tagAt))
      payload = Buffer.concat([decipher.update(datagram.subarray(HEADER_BYTES, tagAt)), decipher.final()])
    } catch {
      return 'mac'
    }
  } else {
    if (datagram.length < HEADER_BYTES + MAC_BYTES + 2) return 'too_short'
    const macAt = datagram.length - MAC_BYTES
    const expected = createHmac('sha256', keys.mac).update(datagram.subarray(0, macAt)).digest()
    if (!timingSafeEqual(expected, datagram.subarray(macAt))) return 'mac'
    if (!plain) return 'plain'
    payload = datagram.subarray(HEADER_BYTES, macAt)
  }
  return { timestamp: Number(datagram.readBigUInt64BE(4)), nonce: datagram.subarray(12, 20), payload }
}
