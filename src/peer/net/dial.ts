import { connect } from 'node:net'
import { type ConnectionOptions, connect as connectTls } from 'node:tls'
import type { z } from 'zod'
import type { Clock } from '../../shared/clock.ts'
import { HousePartyError } from '../../shared/errors.ts'
import type { PintRequestBody } from '../protocol/index.ts'
import { ByteReader } from './bytes.ts'
import type { ConnectionPool } from './pool.ts'
import type { PeerTls } from './secure.ts'
import { PintChannel } from './tcp.ts'
import { splitAddress } from './transport.ts'

export interface DialOptions {
  key: Buffer
  /** TLS to the peer, keyed by the party (absent: in clear, as to a peer of an earlier release while migrating). */
  tls?: PeerTls | undefined
  clock: Clock
  /** How long to wait for the TCP connection, and for the first reply. */
  connectTimeoutMs: number
  /** Idle time after which the connection is cut. */
  idleTimeoutMs: number
  /** Where call() keeps connections between calls (none: one connection per call). */
  pool?: ConnectionPool | undefined
  signal?: AbortSignal | undefined
}

/** Opens a connection to `address` (host:port) and sends one request. */
export async function dial(address: string, body: PintRequestBody, options: DialOptions): Promise<PintChannel> {
  const channel = await connectTo(address, options)
  const detach = cutOnAbort(channel, address, options.signal)
  channel.socket.once('close', detach)
  try {
    await send(channel, address, body, options)
    return channel
  } catch (err) {
    channel.destroy()
    throw err
  }
}

async function connectTo(address: string, options: DialOptions): Promise<PintChannel> {
  const { host, port } = splitAddress(address)
  const reader = new ByteReader()
  const socket = options.tls
    ? connectTls({ host, port, onread: reader.onread, ...options.tls.clientOptions() } as ConnectionOptions)
    : connect({ host, port, noDelay: true, onread: reader.onread })
  socket.setNoDelay(true)
  socket.on('error', () => undefined)
  const channel = new PintChannel(socket, reader.bind(socket), options.key, '')
  const detach = cutOnAbort(channel, address, options.signal)
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new HousePartyError('ERR_TIMEOUT', `no TCP connection to ${address} within ${options.connectTimeoutMs} ms`)),
        options.connectTimeoutMs,
      )
      socket.once(options.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer)
        resolve()
      })
      socket.once('error', (err) => {
        clearTimeout(timer)
        reject(new HousePartyError('ERR_TRANSFER_FAILED', `cannot connect to ${address}: ${err.message}`, { cause: err }))
      })
      socket.once('close', () => {
        clearTimeout(timer)
        reject(new HousePartyError('ERR_TRANSFER_FAILED', `connection to ${address} closed`))
      })
    })
    return channel
  } catch (err) {
    socket.destroy()
    throw err
  } finally {
    detach()
  }
}

/** Destroys the channel if `signal` aborts; call the result once the call is over. */
function cutOnAbort(channel: PintChannel, address: string, signal: AbortSignal | undefined): () => void {
  if (!signal) return () => undefined
  const onAbort = (): void => channel.destroy(new HousePartyError('ERR_ABORTED', `request to ${address} aborted`))
  if (signal.aborted) onAbort()
  signal.addEventListener('abort', onAbort, { once: true })
  return () => signal.removeEventListener('abort', onAbort)
}

async function send(channel: PintChannel, address: string, body: PintRequestBody, options: DialOptions): Promise<void> {
  channel.expectAnswerWithin(options.connectTimeoutMs, options.idleTimeoutMs, () =>
    channel.destroy(new HousePartyError('ERR_TIMEOUT', `${address} did not answer or went silent (frozen or overloaded?)`)),
  )
  await channel.request(body, options.clock)
}

/** What follows a call's request frame on the wire (a small fragment's bytes), and what follows its reply (a fragment's bytes, read by `afterReply`). */
export interface CallExtras<R, T> {
  payload?: (channel: PintChannel) => Promise<void>
  afterReply?: (reply: R, channel: PintChannel) => Promise<T>
}

/**
 * One request, one reply. With a pool, the connection is taken from it and
 * given back after a whole reply; a kept connection that turns out closed
 * before any byte of the reply came back (the other side cut it while it
 * was idle) is replaced by a fresh one, once. Every call is safe to send
 * twice: each op's effect is the same the second time.
 */
export async function call<S extends z.ZodType, T = z.infer<S>>(
  address: string,
  body: PintRequestBody,
  schema: S,
  options: DialOptions,
  extras: CallExtras<z.infer<S>, T> = {},
): Promise<T> {
  const pool = options.pool
  const kept = pool?.take(address, options.key)
  if (kept) {
    const before = kept.reader.consumed
    try {
      return await exchange(kept, address, body, schema, options, extras)
    } catch (err) {
      const lost = err instanceof HousePartyError && err.code === 'ERR_TRANSFER_FAILED' && kept.reader.consumed === before
      if (!lost || options.signal?.aborted) throw err
    }
  }
  const channel = await connectTo(address, options)
  return exchange(channel, address, body, schema, options, extras)
}

async function exchange<S extends z.ZodType, T>(
  channel: PintChannel,
  address: string,
  body: PintRequestBody,
  schema: S,
  options: DialOptions,
  extras: CallExtras<z.infer<S>, T>,
): Promise<T> {
  const detach = cutOnAbort(channel, address, options.signal)
  let result: T
  try {
    // The request frame and its payload leave in one write.
    channel.socket.cork()
    try {
      await send(channel, address, body, options)
      if (extras.payload) await extras.payload(channel)
    } finally {
      channel.socket.uncork()
    }
    const reply = await channel.readReply(schema)
    // Without `afterReply`, T is the reply's own type (call's default).
    result = extras.afterReply ? await extras.afterReply(reply, channel) : (reply as T)
  } catch (err) {
    channel.destroy()
    throw err
  } finally {
    detach()
  }
  if (options.pool) options.pool.give(address, options.key, channel)
  else channel.destroy()
  return result
}
