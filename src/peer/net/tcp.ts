import { createHmac, createSecretKey, type KeyObject, randomBytes, timingSafeEqual } from 'node:crypto'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import type { z } from 'zod'
import type { Clock } from '../../shared/clock.ts'
import { ERROR_CODES, type ErrorCode, HousePartyError, toHousePartyError } from '../../shared/errors.ts'
import { CHUNK_CHECKSUM_BYTES, PintFailure, type PintRequestBody } from '../protocol/index.ts'
import type { ByteReader } from './bytes.ts'
import { framesNeedMac } from './secure.ts'

/**
 * TCP framing for the data plane. A frame is
 *
 *   u32 length | JSON (length bytes) | HMAC-SHA256(key, label | JSON)
 *
 * The label binds a frame to its role: "q" for a request, "r" + the
 * request's nonce for a reply, "t" + nonce for a hold trailer. A reply
 * therefore cannot be replayed as another request's reply. On a TLS
 * connection whose ends agreed on FRAMES_IN_TLS (secure.ts) a frame is
 * the length and the JSON alone: TLS authenticates it.
 *
 * Fragment bytes are not framed: a hold sends chunks as
 * u32 length | CRC-32 | bytes and ends with a zero length; a fetch reply is
 * followed by the fragment's raw bytes, whose chunk digests the reply's
 * manifest lists. The trailer and the manifest are authenticated, so every
 * byte is.
 */
export const MAX_REQUEST_FRAME = 1024 * 1024
export const MAX_REPLY_FRAME = 256 * 1024 * 1024
const MAC_BYTES = 32
const CHUNK_HEADER = 4 + CHUNK_CHECKSUM_BYTES
/**
 * A chunk length that means "no chunk yet, still here": a sender whose own
 * source is slow (a client uploading over a slow link) keeps the holder's
 * idle timeout from cutting a transfer that is alive.
 */
const KEEPALIVE_MARK = 0xffffffff
/**
 * Bytes a sender may queue on a socket before it waits for 'drain'. Waiting
 * at Node's default (16 KiB) would stall a 512 KiB chunk writer on every
 * chunk; a few MiB keeps the kernel's buffer full while memory stays bounded.
 */
const SEND_WINDOW = 4 * 1024 * 1024

/** `tls`: the TLS handshake failed (another party's key, or not TLS at all); `plain`: a connection in clear while the party requires TLS. */
export type TcpRejectReason = 'tls' | 'plain' | 'frame' | 'mac' | 'stale' | 'replayed' | 'json' | 'schema'

export class PintChannel {
  readonly socket: Socket
  readonly reader: ByteReader
  readonly #key: Buffer
  #nonce: string
  #idleAfterFirstFrameMs: number | undefined
  #onTimeout: (() => void) | undefined

  constructor(socket: Socket, reader: ByteReader, key: Buffer, nonce: string) {
    this.socket = socket
    this.reader = reader
    this.#key = key
    this.#nonce = nonce
  }

  /** The request's nonce: replies and trailers are bound to it. */
  get nonce(): string {
    return this.#nonce
  }

  /** Server side: the nonce is known once the request frame is read. */
  bind(nonce: string): void {
    this.#nonce = nonce
  }

  /**
   * Writes with backpressure: resolves once the socket can take more. `flushed` runs once the socket has
   * taken `data` (the buffer may be reused then).
   */
  async write(data: Buffer, flushed?: () => void): Promise<void> {
    if (this.socket.destroyed) throw new HousePartyError('ERR_TRANSFER_FAILED', 'connection closed')
    this.socket.write(data, flushed && (() => flushed()))
    if (this.socket.writableLength > SEND_WINDOW) await waitDrain(this.socket)
  }

  /** Whether this connection's frames carry their own HMAC (all but a TLS session that agreed to go without: see FRAMES_IN_TLS). */
  get framesNeedMac(): boolean {
    return framesNeedMac(this.socket)
  }

  sendFrame(label: string, body: unknown): Promise<void> {
    return this.write(encodeFrame(this.framesNeedMac ? this.#key : undefined, label, body))
  }

  async readFrame(label: string, maxBytes = MAX_REPLY_FRAME): Promise<unknown> {
    const frame = await decodeFrame(this.framesNeedMac ? this.#key : undefined, label, this.reader, maxBytes)
    if (this.#idleAfterFirstFrameMs !== undefined) {
      this.socket.setTimeout(this.#idleAfterFirstFrameMs)
      this.#idleAfterFirstFrameMs = undefined
    }
    return frame
  }

  /**
   * Client side: until the first reply the socket times out after the short
   * connect timeout (a frozen peer's kernel still accepts connections, so
   * only a missing answer gives it away), then after the longer idle timeout.
   */
  expectAnswerWithin(firstMs: number, thenIdleMs: number, onTimeout: () => void): void {
    // One listener for the channel's life: a kept connection is armed again for each request it carries.
    if (!this.#onTimeout) this.socket.on('timeout', () => this.#onTimeout?.())
    this.#onTimeout = onTimeout
    this.socket.setTimeout(firstMs)
    this.#idleAfterFirstFrameMs = thenIdleMs
  }

  /** Client side: sends a request on this connection (its first, or the next one on a kept connection). */
  async request(body: PintRequestBody, clock: Clock): Promise<void> {
    const nonce = nextNonce()
    this.bind(nonce)
    await this.sendFrame('q', { v: 1, ts: clock.now(), nonce, ...body })
  }

  /** Client side: the connection may carry another request (its reply was read whole and nothing else arrived). */
  get reusable(): boolean {
    return !this.socket.destroyed && this.reader.idle
  }

  /** Client side, between requests on a kept connection: no timeout while it waits in the pool. */
  rest(): void {
    this.socket.setTimeout(0)
    this.#idleAfterFirstFrameMs = undefined
  }

  reply(body: unknown): Promise<void> {
    return this.sendFrame(`r${this.nonce}`, body)
  }

  /** Reads a reply and checks it against `schema`; a failure reply becomes its HousePartyError. */
  async readReply<S extends z.ZodType>(schema: S): Promise<z.infer<S>> {
    return checkReply(await this.readFrame(`r${this.nonce}`), schema)
  }

  /** Queues one chunk; `flushed` runs once the socket no longer needs `data` (sent, or the connection failed). */
  async writeChunk(data: Buffer, digest: Buffer, flushed?: () => void): Promise<void> {
    const header = Buffer.allocUnsafe(CHUNK_HEADER)
    header.writeUInt32BE(data.length, 0)
    digest.copy(header, 4)
    this.socket.cork()
    this.socket.write(header)
    this.socket.write(data, flushed && (() => flushed()))
    this.socket.uncork()
    if (this.socket.writableLength > SEND_WINDOW) await waitDrain(this.socket)
  }

  /** A small fragment's one chunk, or for an empty file (no checksum) the end mark alone. */
  writeWholeChunk(data: Buffer, checksum: Buffer | undefined): Promise<void> {
    return checksum && data.length > 0 ? this.writeChunk(data, checksum) : this.endChunks()
  }

  endChunks(): Promise<void> {
    return this.write(Buffer.alloc(4))
  }

  /** Tells the reader of a chunk stream that the sender is alive though it has nothing to send yet. */
  keepAlive(): void {
    if (this.socket.destroyed) return
    const mark = Buffer.allocUnsafe(4)
    mark.writeUInt32BE(KEEPALIVE_MARK, 0)
    this.socket.write(mark)
  }

  /**
   * The next chunk of a hold stream, or undefined at its end marker. The
   * bytes land in `into(length)`, a buffer the caller owns (and may reuse).
   */
  async readChunk(maxBytes: number, into: (length: number) => Buffer): Promise<{ data: Buffer; digest: Buffer } | undefined> {
    let len = (await this.reader.read(4)).readUInt32BE(0)
    while (len === KEEPALIVE_MARK) len = (await this.reader.read(4)).readUInt32BE(0)
    if (len === 0) return undefined
    if (len > maxBytes) throw new HousePartyError('ERR_PROTOCOL', `chunk of ${len} bytes exceeds ${maxBytes}`)
    const digest = await this.reader.read(CHUNK_CHECKSUM_BYTES)
    const data = into(len)
    await this.reader.readInto(data)
    return { data, digest }
  }

  /** Half-closes our side and waits for the peer to close. */
  async finish(): Promise<void> {
    if (this.socket.destroyed) return
    this.socket.end()
    if (!this.socket.closed) await once(this.socket, 'close').catch(() => undefined)
  }

  destroy(err?: Error): void {
    this.socket.destroy(err)
  }
}

/** A frame, with its HMAC under `key` (none without a key: a connection TLS authenticates). */
export function encodeFrame(key: Buffer | undefined, label: string, body: unknown): Buffer {
  const json = JSON.stringify(body)
  const length = Buffer.byteLength(json)
  const out = Buffer.allocUnsafe(4 + length + (key ? MAC_BYTES : 0))
  out.writeUInt32BE(length, 0)
  out.write(json, 4, 'utf8')
  if (key) mac(key, label, out.subarray(4, 4 + length)).copy(out, 4 + length)
  return out
}

async function decodeFrame(key: Buffer | undefined, label: string, reader: ByteReader, maxBytes: number): Promise<unknown> {
  const len = (await reader.read(4)).readUInt32BE(0)
  if (len > maxBytes) throw new FrameRejected('frame', `frame of ${len} bytes exceeds ${maxBytes}`)
  const json = await reader.read(len)
  if (key && !timingSafeEqual(await reader.read(MAC_BYTES), mac(key, label, json))) {
    throw new FrameRejected('mac', 'frame failed authentication (wrong party key?)')
  }
  try {
    return JSON.parse(json.toString('utf8'))
  } catch {
    throw new FrameRejected('json', 'frame is not JSON')
  }
}

/** The party key as a KeyObject, made once per key: an HMAC keyed by a KeyObject costs a fifth of one keyed by a Buffer. */
const keyObjects = new WeakMap<Buffer, KeyObject>()

function mac(key: Buffer, label: string, json: Buffer): Buffer {
  let keyObject = keyObjects.get(key)
  if (!keyObject) {
    keyObject = createSecretKey(key)
    keyObjects.set(key, keyObject)
  }
  return createHmac('sha256', keyObject).update(label).update('\0').update(json).digest()
}

/** A frame that failed a check; `reason` is what the metrics count. */
export class FrameRejected extends HousePartyError {
  readonly reason: TcpRejectReason
  constructor(reason: TcpRejectReason, message: string) {
    super('ERR_PROTOCOL', message)
    this.reason = reason
  }
}

/** A reply (or one answer of a batch) checked against `schema`; a failure reply becomes its HousePartyError. */
export function checkReply<S extends z.ZodType>(value: unknown, schema: S): z.infer<S> {
  // Only a reply that says `ok: false` can be a failure: the others skip a parse each.
  const failure = (value as { ok?: unknown } | null)?.ok === false ? PintFailure.safeParse(value) : undefined
  if (failure?.success) throw remoteError(failure.data.error.code, failure.data.error.message)
  const parsed = schema.safeParse(value)
  if (!parsed.success) throw new HousePartyError('ERR_PROTOCOL', `unexpected reply: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
  return parsed.data
}

/** What a peer answers for a request (or one call of a batch) that failed: the reply `remoteError` turns back into the error. */
export function failureReply(err: unknown): { ok: false; error: { code: string; message: string } } {
  const e = toHousePartyError(err)
  return { ok: false, error: { code: e.code, message: e.message } }
}

function remoteError(code: string, message: string): HousePartyError {
  return code in ERROR_CODES ? new HousePartyError(code as ErrorCode, message) : new HousePartyError('ERR_PROTOCOL', `${code}: ${message}`)
}

async function waitDrain(socket: Socket): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      socket.off('drain', onDrain)
      socket.off('close', onClose)
      socket.off('error', done)
      if (err) reject(toHousePartyError(err))
      else resolve()
    }
    const onDrain = (): void => done()
    const onClose = (): void => done(new HousePartyError('ERR_TRANSFER_FAILED', 'connection closed while sending'))
    socket.on('drain', onDrain)
    socket.on('close', onClose)
    socket.on('error', done)
  })
}

/** Random bytes drawn 4 KiB at a time, 8 per request's nonce: a call to the CSPRNG for each request was an eighth of a kept-connection call's CPU on the asking side. */
const NONCE_POOL = 4096
let noncePool = Buffer.alloc(0)
let nonceAt = NONCE_POOL
function nextNonce(): string {
  if (nonceAt + 8 > noncePool.length) {
    noncePool = randomBytes(NONCE_POOL)
    nonceAt = 0
  }
  nonceAt += 8
  return noncePool.toString('hex', nonceAt - 8, nonceAt)
}
