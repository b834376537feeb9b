import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import { type ErrorCode, HousePartyError, toHousePartyError } from '../../shared/errors.ts'
import type { Logger } from '../../shared/logger.ts'
import type { Membership } from '../membership/index.ts'
import type { PeerMetrics } from '../metrics/index.ts'
import { abortOnClose, type FileRoutesOptions, registerFileRoutes } from './files.ts'

export interface ApiOptions {
  host: string
  port: number
  membership: Membership
  /** True once this peer has started a graceful leave (it drains before it says goodbye). */
  leaving?: () => boolean
  metrics: PeerMetrics
  logger: Logger
  /** The file API; absent, only guests, health and metrics are served. */
  files?: FileRoutesOptions
  /** GET /health/party: healthy / degraded / lost files across the party. */
  partyHealth?: (signal: AbortSignal) => Promise<unknown>
  /** Fragment bytes this peer holds. */
  heldBytes?: () => number
}

/** How long a client should wait before asking a peer that is not (yet) a guest again: about one join round. */
const RETRY_AFTER_SECONDS = 2

/** Fastify's own refusals (4xx) under the code that says what they mean. */
export function clientError(status: number, message: string): HousePartyError {
  const code: ErrorCode = status === 401 ? 'ERR_UNAUTHORIZED' : status === 404 ? 'ERR_NOT_FOUND' : status === 499 ? 'ERR_ABORTED' : 'ERR_INVALID_ARGUMENT'
  return new HousePartyError(code, message)
}

/** The peer's HTTP API: files, guests, health, metrics. Errors are JSON { error: { code, message } }. */
export function createApi(options: ApiOptions): FastifyInstance {
  // Fastify's own request logging is off: one line per request would drown the membership log.
  const app: FastifyInstance = Fastify({
    // On close, idle keep-alive connections go at once; requests in flight may finish (Peer.stop bounds the wait).
    forceCloseConnections: 'idle',
    // A request that arrives while the server closes (on a kept-alive connection) is answered by the routes, which
    // know the peer is leaving (ERR_LEAVING, with Retry-After), rather than by a bare 503 without a code.
    return503OnClosing: false,
    // A URL that does not decode (e.g. an encoded lone surrogate) gets the same JSON error as everything else.
    frameworkErrors: (err, req, reply) => {
      const code = req.url.startsWith('/files/') ? 'ERR_BAD_NAME' : 'ERR_INVALID_ARGUMENT'
      void (reply as FastifyReply).status(400).send({ error: { code, message: err.message } })
    },
  })
  const { membership, metrics } = options

  app.setErrorHandler((err: Error, req, reply) => {
    const fastifyStatus = (err as { statusCode?: number }).statusCode
    const e = err instanceof HousePartyError ? err : fastifyStatus && fastifyStatus < 500 ? clientError(fastifyStatus, err.message) : toHousePartyError(err)
    // A client's mistake (4xx) is news, not trouble: info, no stack. A 5xx is trouble: warn, with the stack only
    // when it is unexpected (ERR_INTERNAL); an expected one (too few peers, a timeout) says enough by its code.
    const entry = { method: req.method, url: req.url.slice(0, 300), status: e.status, code: e.code, reason: e.message }
    if (e.status >= 500) options.logger.warn(e.code === 'ERR_INTERNAL' ? { ...entry, err: e } : entry, 'request failed')
    else options.logger.info(entry, 'request refused')
    if (e.code === 'ERR_NOT_ADMITTED' || e.code === 'ERR_LEAVING') void reply.header('retry-after', String(RETRY_AFTER_SECONDS))
    void reply.status(e.status).send({ error: e.toJSON() })
  })
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'ERR_NOT_FOUND', message: `no route ${req.method} ${req.url}` } })
  })

  // A leaving peer ends every connection after its answer: keep-alive clients (and a Service's pooled connections)
  // reconnect, and land on a peer that stays, instead of finding this one gone mid-conversation.
  app.addHook('onSend', async (_req, reply) => {
    if (options.leaving?.()) void reply.header('connection', 'close')
  })

  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/health/party', async (_req, reply) => {
    if (!options.partyHealth) return reply.status(404).send({ error: new HousePartyError('ERR_NOT_FOUND', 'no file service on this peer').toJSON() })
    if (!membership.isGuest) throw new HousePartyError('ERR_NOT_ADMITTED')
    return options.partyHealth(abortOnClose(reply))
  })

  app.get('/readyz', async (_req, reply) => {
    if (options.leaving?.() || membership.status === 'leaving') {
      return reply.status(503).send({ status: 'leaving', error: new HousePartyError('ERR_DRAINING').toJSON() })
    }
    if (!membership.isGuest) {
      void reply.header('retry-after', String(RETRY_AFTER_SECONDS))
      return reply.status(503).send({ status: membership.status, error: new HousePartyError('ERR_NOT_ADMITTED').toJSON() })
    }
    // Admitted, but not every guest has installed the list with this peer on it yet (a ping interval or so):
    // a rolling update must not stop the next peer while some guest cannot reach this one's fragments.
    if (!membership.knownToAll) {
      void reply.header('retry-after', '1')
      return reply
        .status(503)
        .send({ status: 'announcing', error: new HousePartyError('ERR_NOT_ADMITTED', 'admitted; not every guest has this peer on its list yet').toJSON() })
    }
    return { status: 'ready', epoch: membership.view?.epoch }
  })

  app.get('/guests', async () => {
    const view = membership.view
    return {
      self: membership.id,
      status: membership.status,
      epoch: view?.epoch ?? 0,
      guests: (view?.guests ?? []).map((g) => ({
        id: g.id,
        address: g.address,
        apiPort: g.apiPort,
        since: g.since,
        incarnation: g.incarnation,
        domains: g.domains ?? {},
        self: g.id === membership.id,
        // What the guest last said it holds (its own store, for this peer): what an operator sizes the party by.
        heldBytes: g.id === membership.id ? (options.heldBytes?.() ?? null) : (membership.heldBytes(g.id) ?? null),
      })),
    }
  })

  app.get('/metrics', async (_req, reply) => {
    const body = await metrics.registry.metrics()
    return reply.type(metrics.registry.contentType).send(body)
  })

  const auth = { failed: () => metrics.authFailures.inc({ api: 'files' }), throttled: () => metrics.authThrottled.inc({ api: 'files' }) }
  if (options.files) registerFileRoutes(app, { ...options.files, auth })
  return app
}
