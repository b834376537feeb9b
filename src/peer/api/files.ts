import { createHash, timingSafeEqual } from 'node:crypto'
import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { HousePartyError } from '../../shared/errors.ts'
import type { InFlight } from '../../shared/lifecycle.ts'
import type { FileService, FileSummary, ListRequest } from '../files/index.ts'
import type { KeyStore } from '../keys/index.ts'
import { GuestId, MAX_PAGE, S3_STATE_PREFIX } from '../protocol/index.ts'
import { AuthLimiter } from './auth-limit.ts'
import { registerKeyRoutes } from './keys.ts'
import { streamBody } from './stream-body.ts'

export interface FileRoutesOptions {
  files: FileService
  /** When non-empty, every route here requires "Authorization: Bearer <token>". */
  apiToken: string
  /** False until this peer is a guest (and again while it rejoins): file routes answer ERR_NOT_ADMITTED then. */
  admitted: () => boolean
  /** True once this peer is about to say goodbye: file routes answer ERR_LEAVING, never a false "too few fragments". */
  closing?: () => boolean
  /** File requests being answered: a leaving peer waits for them before its goodbye. */
  inFlight?: InFlight
  /** S3 access keys, served under /keys behind the same token. */
  keys?: KeyStore
  /** Told of every request refused for its token, and of every one refused unread from a source that failed too often. */
  auth?: { failed(): void; throttled(): void }
}

/**
 * The file API: PUT/GET/HEAD/DELETE /files/{name}, GET /files and
 * GET /guests/{id}/fragments. Bodies stream both ways; nothing is buffered
 * whole. Any peer serves any file.
 */
export function registerFileRoutes(app: FastifyInstance, options: FileRoutesOptions): void {
  const { files } = options
  void app.register(async (scope) => {
    if (options.apiToken !== '') {
      const limiter = new AuthLimiter()
      scope.addHook('onRequest', async (req, reply) => {
        const wait = limiter.blockedFor(req.ip, Date.now())
        if (wait > 0) {
          options.auth?.throttled()
          void reply.header('retry-after', String(Math.ceil(wait / 1000)))
          throw new HousePartyError('ERR_TOO_MANY_FAILURES')
        }
        if (!tokenMatches(req, options.apiToken)) {
          limiter.failed(req.ip, Date.now())
          options.auth?.failed()
          throw new HousePartyError('ERR_UNAUTHORIZED')
        }
      })
    }
    // Before admission this peer knows no trackers: say so (with Retry-After) rather than "none of the 0 trackers answered".
    scope.addHook('onRequest', async (_req, reply) => {
      if (options.closing?.()) throw new HousePartyError('ERR_LEAVING')
      if (options.inFlight) reply.raw.once('close', options.inFlight.enter())
      if (!options.admitted())
        throw new HousePartyError('ERR_NOT_ADMITTED', 'this peer is not a guest of the party yet (joining or rejoining); try again shortly or ask another peer')
    })
    // Request bodies are file contents: hand the raw stream to the handler, whatever the content type.
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null))

    if (options.keys) registerKeyRoutes(scope, options.keys)

    scope.get('/files', async (req, reply) => files.page(pageQuery(req.query), abortOnClose(reply)))

    scope.put('/files/*', async (req, reply) => {
      const name = writableName(req)
      const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length'])
      const signal = abortOnClose(reply)
      const result = await files.put(name, sizedBody(req.raw, declared), { signal, sizeHint: declared })
      void reply.header('etag', `"${result.hash}"`).header('x-houseparty-version', result.version)
      return reply.status(201).send(result)
    })

    scope.head('/files/*', async (req, reply) => {
      const file = await files.stat(nameOf(req), abortOnClose(reply))
      fileHeaders(reply, file.size, file.hash, file.version, file.health)
      return reply.status(200).send()
    })

    scope.get('/files/*', { exposeHeadRoute: false }, async (req, reply) => {
      const opened = await files.open(nameOf(req), abortOnClose(reply))
      const { record } = opened
      if (req.headers['if-none-match'] === `"${record.hash}"`) {
        await opened.body.return(undefined)
        return reply.status(304).header('etag', `"${record.hash}"`).send()
      }
      if (record.size <= WHOLE_REPLY_BYTES) {
        // A small file is read whole (and checked against its hash) before the answer starts: one write, no stream
        // to set up, and a file that fails its hash gets an error status instead of a short body.
        const pieces: Buffer[] = []
        for await (const piece of opened.body) pieces.push(piece)
        fileHeaders(reply, record.size, record.hash, record.version)
        return reply.status(200).send(pieces.length === 1 ? pieces[0] : Buffer.concat(pieces))
      }
      fileHeaders(reply, record.size, record.hash, record.version)
      if (!opened.recycle) return reply.status(200).send(Readable.from(opened.body, { objectMode: false }))
      await streamBody(reply.status(200), opened, options.closing?.() ?? false)
    })

    scope.delete('/files/*', async (req, reply) => files.remove(writableName(req), abortOnClose(reply)))

    scope.get('/guests/:id/fragments', async (req, reply) => {
      const parsed = GuestId.safeParse((req.params as { id: string }).id)
      if (!parsed.success) throw new HousePartyError('ERR_INVALID_ARGUMENT', 'a guest id is 16 hex digits')
      const fragments = await files.fragmentsOf(parsed.data, abortOnClose(reply))
      return { guest: parsed.data, fragments, bytes: fragments.reduce((n, f) => n + f.bytes, 0) }
    })
  })
}

function fileHeaders(reply: FastifyReply, size: number, hash: string, version: string, health?: FileSummary['health']): void {
  void reply
    .header('content-type', 'application/octet-stream')
    .header('content-length', String(size))
    .header('etag', `"${hash}"`)
    .header('x-houseparty-version', version)
  if (health) void reply.header('x-houseparty-health', health)
}

function nameOf(req: FastifyRequest): string {
  return (req.params as Record<string, string | undefined>)['*'] ?? ''
}

/** A name a native put or delete may change: not the S3 API's own state. */
function writableName(req: FastifyRequest): string {
  const name = nameOf(req)
  if (name.startsWith(S3_STATE_PREFIX))
    throw new HousePartyError(
      'ERR_BAD_NAME',
      `names under ${S3_STATE_PREFIX} hold the S3 API's buckets, keys and uploads: change them through the S3 API or houseparty key`,
    )
  return name
}

/** Compared as sha256 digests in constant time: neither the token's bytes nor its length show in how long a refusal takes. */
function tokenMatches(req: FastifyRequest, token: string): boolean {
  const header = req.headers.authorization ?? ''
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest()
  return timingSafeEqual(digest(header.startsWith('Bearer ') ? header.slice(7) : ''), digest(token))
}

/** Aborts when the client goes away before the answer is complete. */
export function abortOnClose(reply: FastifyReply): AbortSignal {
  const controller = new AbortController()
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort()
  })
  return controller.signal
}

/**
 * The request body, checked against Content-Length: a body that ends short
 * (the client died mid-upload) fails the put instead of storing a truncated
 * file.
 */
async function* sizedBody(body: AsyncIterable<Uint8Array>, declared: number | undefined): AsyncGenerator<Uint8Array> {
  let got = 0
  for await (const piece of body) {
    got += piece.length
    if (declared !== undefined && got > declared) throw new HousePartyError('ERR_INVALID_ARGUMENT', `body longer than its Content-Length ${declared}`)
    yield piece
  }
  if (declared !== undefined && got !== declared) {
    throw new HousePartyError('ERR_TRANSFER_FAILED', `upload ended after ${got} of ${declared} bytes`)
  }
}

const DEFAULT_PAGE = 1000
/** Files up to this size are answered from memory in one write rather than streamed. */
const WHOLE_REPLY_BYTES = 256 * 1024

/** `GET /files?prefix=&delimiter=&limit=&after=&token=`: `token` (from the last page's `next`) wins over `after`. */
function pageQuery(query: unknown): ListRequest {
  const q = (query ?? {}) as Record<string, unknown>
  const text = (key: string, max: number): string => {
    const value = q[key]
    if (value === undefined) return ''
    if (typeof value !== 'string' || value.length > max)
      throw new HousePartyError('ERR_INVALID_ARGUMENT', `${key} must be given once, at most ${max} characters`)
    return value
  }
  const limitText = text('limit', 8)
  const limit = limitText === '' ? DEFAULT_PAGE : Number(limitText)
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)
    throw new HousePartyError('ERR_INVALID_ARGUMENT', `limit must be an integer from 1 to ${MAX_PAGE}`)
  return { prefix: text('prefix', 4096), delimiter: text('delimiter', 64), after: text('after', 4096), token: text('token', 16_384), limit }
}
