import { createServer, type Server, type Socket } from 'node:net'
import type { Clock } from '../../shared/clock.ts'
import { HousePartyError, toHousePartyError } from '../../shared/errors.ts'
import type { Logger } from '../../shared/logger.ts'
import { PintRequest } from '../protocol/index.ts'
import { ByteReader } from './bytes.ts'
import { ReplayWindow } from './replay.ts'
import { firstByte, type PeerTls, TLS_HANDSHAKE_BYTE } from './secure.ts'
import { FrameRejected, failureReply, MAX_REQUEST_FRAME, PintChannel, type TcpRejectReason } from './tcp.ts'

export type PintHandler = (request: PintRequest, channel: PintChannel) => Promise<void>

export interface PintServerOptions {
  key: Buffer
  tls: PeerTls
  /** Also take connections in clear (a party migrating from a release without TLS between peers). */
  plain: boolean
  /** How long a new connection may take to say who it is (its TLS handshake): a slow or silent one is cut. */
  handshakeTimeoutMs: number
  clock: Clock
  logger: Logger
  /** Idle time after which a connection is cut. */
  idleTimeoutMs: number
  handler: PintHandler
  onReject: (reason: TcpRejectReason) => void
}

/**
 * Accepts data-plane connections: authenticates each request frame (by TLS,
 * or by its HMAC and the replay window), checks it against the schema, then
 * hands it to the handler.
 * Whatever the handler throws goes back as a failure reply, and ends the
 * connection; nothing a remote sends can throw out of here. A connection
 * whose request was served may carry the next request (clients keep
 * connections for calls: see ConnectionPool) until the client closes it or
 * it stays idle for the idle timeout.
 */
export class PintServer {
  readonly #options: PintServerOptions
  readonly #replay: ReplayWindow
  readonly #sockets = new Set<Socket>()
  #server: Server | undefined

  constructor(options: PintServerOptions) {
    this.#options = options
    this.#replay = new ReplayWindow(options.clock)
  }

  async listen(host: string, port: number): Promise<void> {
    // Paused on connect, so the reader can give the socket its read buffer before the first byte.
    const server = createServer({ pauseOnConnect: true }, (socket) => void this.#serve(socket))
    server.on('error', (err) => this.#options.logger.error({ err }, 'tcp server error'))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    this.#server = server
  }

  /** The port it listens on (useful after listening on port 0). */
  get port(): number {
    const addr = this.#server?.address()
    return typeof addr === 'object' && addr ? addr.port : 0
  }

  async close(): Promise<void> {
    const server = this.#server
    this.#server = undefined
    for (const socket of this.#sockets) socket.destroy()
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  async #serve(raw: Socket): Promise<void> {
    this.#sockets.add(raw)
    raw.setNoDelay(true)
    raw.on('error', () => undefined)
    raw.once('close', () => this.#sockets.delete(raw))
    const socket = await this.#secure(raw)
    if (!socket) return
    socket.setTimeout(this.#options.idleTimeoutMs, () => socket.destroy(new HousePartyError('ERR_TIMEOUT', 'connection idle too long')))
    socket.on('error', () => undefined)
    const channel = new PintChannel(socket, new ByteReader().attach(socket), this.#options.key, '')
    try {
      // The first request, then any that follow once each is served; the client's close (or the idle timeout) ends it.
      for (let first = true; first || !(await channel.reader.atEnd()); first = false) {
        if (!(await this.#serveOne(channel))) return
        channel.reader.shed()
      }
    } finally {
      socket.destroy()
    }
  }

  /**
   * The connection to read requests from: the TLS session a peer opens, or
   * (while migrating) the connection itself when it speaks in clear.
   * Undefined, and the connection cut and counted, when it fails the
   * handshake, speaks in clear when TLS is required, or says nothing in time.
   */
  async #secure(raw: Socket): Promise<Socket | undefined> {
    const { handshakeTimeoutMs } = this.#options
    const first = await firstByte(raw, handshakeTimeoutMs)
    if (first === TLS_HANDSHAKE_BYTE) {
      try {
        return await this.#options.tls.accept(raw, handshakeTimeoutMs)
      } catch {
        this.#options.onReject('tls')
        return undefined
      }
    }
    if (first !== undefined && this.#options.plain) return raw
    this.#options.onReject(first === undefined ? 'frame' : 'plain')
    raw.destroy()
    return undefined
  }

  /** Serves one request; false when the connection must end (a rejected frame, a failure reply). */
  async #serveOne(channel: PintChannel): Promise<boolean> {
    let request: PintRequest
    try {
      request = await this.#readRequest(channel)
    } catch (err) {
      if (err instanceof FrameRejected) this.#options.onReject(err.reason)
      return false
    }
    channel.bind(request.nonce)
    try {
      await this.#options.handler(request, channel)
      return !channel.socket.destroyed
    } catch (err) {
      const e = toHousePartyError(err)
      if (!channel.socket.destroyed) {
        await channel.reply(failureReply(e)).catch(() => undefined)
        await channel.finish().catch(() => undefined)
      }
      // A refusal (503: this peer is leaving, rejoining, or holds its decisions back) is the asker's to retry, not a fault here.
      if (e.status === 503) this.#options.logger.debug({ code: e.code, op: request.op, err: e.message }, 'data-plane request refused')
      else if (e.status >= 500 && e.code !== 'ERR_TRANSFER_FAILED') this.#options.logger.warn({ err: e, op: request.op }, 'data-plane request failed')
      return false
    }
  }

  async #readRequest(channel: PintChannel): Promise<PintRequest> {
    let value: unknown
    try {
      value = await channel.readFrame('q', MAX_REQUEST_FRAME)
    } catch (err) {
      if (err instanceof FrameRejected) throw err
      throw new FrameRejected('frame', (err as Error).message)
    }
    const parsed = PintRequest.safeParse(value)
    if (!parsed.success) throw new FrameRejected('schema', 'request does not match the schema')
    // A TLS session keeps its frames from being replayed: the window guards connections whose frames carry an HMAC.
    if (!channel.framesNeedMac) return parsed.data
    const verdict = this.#replay.check(parsed.data.ts, Buffer.from(parsed.data.nonce, 'hex'))
    if (verdict !== 'ok') throw new FrameRejected(verdict, `request ${verdict}`)
    return parsed.data
  }
}
