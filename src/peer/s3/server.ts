import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { InFlight } from '../../shared/lifecycle.ts'
import type { Logger } from '../../shared/logger.ts'
import { AuthLimiter } from '../api/index.ts'
import type { FileService } from '../files/index.ts'
import type { KeyStore, Right } from '../keys/index.ts'
import type { PeerMetrics } from '../metrics/index.ts'
import { bucketLocation, bucketVersioning, createBucket, deleteBucket, deleteObjects, headBucket } from './bucket-ops.ts'
import { BucketStore } from './buckets.ts'
import { S3Error, toS3Error } from './errors.ts'
import { listBuckets, listObjectsV1, listObjectsV2 } from './listing.ts'
import { abortMultipart, completeUpload, createUpload, listParts, listUploads, uploadPart } from './multipart.ts'
import { copyObject, deleteObject, getObject, putObject } from './objects.ts'
import { addressOf, authenticate, authorize, type S3Call } from './request.ts'
import { headerOf } from './sigv4.ts'
import { xmlDocument } from './xml.ts'

export interface S3Options {
  files: FileService
  keys: KeyStore
  region: string
  /** Virtual-host style domain (BUCKET.<domain>); empty for path style only. */
  domain: string
  metrics: PeerMetrics
  logger: Logger
  /** False until this peer is a guest: requests answer ServiceUnavailable meanwhile. */
  admitted: () => boolean
  /** Requests being answered: a leaving peer lets them finish before its goodbye. */
  inFlight?: InFlight
  now?: () => number
}

type Handler = (call: S3Call, reply: FastifyReply, signal: AbortSignal) => Promise<void>
interface Route {
  op: string
  /** The right the request's key needs on the bucket ('create': to create buckets; 'none': checked by the operation). */
  right: Right | 'create' | 'none'
  run: Handler
  /** Query parameters the operation understands; any other (a sub-resource such as ?acl or ?tagging) is NotImplemented. */
  params: readonly string[]
}

const UPLOADS = ['uploads', 'prefix', 'delimiter', 'key-marker', 'upload-id-marker', 'max-uploads', 'encoding-type']
const LIST_V1 = ['prefix', 'delimiter', 'marker', 'max-keys', 'encoding-type']
const LIST_V2 = ['list-type', 'prefix', 'delimiter', 'max-keys', 'continuation-token', 'start-after', 'encoding-type', 'fetch-owner']
const READ = [
  'partNumber',
  'versionId',
  ...['type', 'language', 'expires', 'cache-control', 'disposition', 'encoding'].map((h) => `response-content-${h}`),
  'response-expires',
  'response-cache-control',
]

/** Errors that say a request's credential is wrong (not that it lacks a right, or has expired). */
const AUTH_FAILURES = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch'])

/**
 * The S3 endpoint: one catch-all route on its own port. Each request is
 * addressed (path or virtual-host style), its signature verified, and
 * dispatched on method, bucket, key and sub-resource; anything not
 * implemented answers 501 NotImplemented, never a wrong success. Errors are
 * S3's XML documents.
 */
export function createS3Server(options: S3Options): FastifyInstance {
  const now = options.now ?? Date.now
  const buckets = new BucketStore(options.files, now)
  const deps = { files: options.files, buckets, region: options.region, now, keys: options.keys }
  const route = routeTable(deps)
  const app = Fastify({ forceCloseConnections: 'idle', return503OnClosing: false, exposeHeadRoutes: false })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, _payload, done) => done(null))
  // Guessing keys or signatures is slow: a source that fails too often is answered SlowDown unread (see AuthLimiter).
  const limiter = new AuthLimiter()
  const limitedAuth = async <T>(source: string, check: () => Promise<T>): Promise<T> => {
    const wait = limiter.blockedFor(source, now())
    if (wait > 0) {
      options.metrics.authThrottled.inc({ api: 's3' })
      throw new S3Error('SlowDown', `too many failed authentications from ${source}; retry in ${Math.ceil(wait / 1000)} s`)
    }
    try {
      return await check()
    } catch (err) {
      if (err instanceof S3Error && AUTH_FAILURES.has(err.code)) {
        limiter.failed(source, now())
        options.metrics.authFailures.inc({ api: 's3' })
      }
      throw err
    }
  }
  const handle = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const started = performance.now()
    const requestId = randomBytes(8).toString('hex').toUpperCase()
    void reply.header('x-amz-request-id', requestId).header('server', 'HouseParty')
    let op = 'Unknown'
    const controller = new AbortController()
    if (options.inFlight) reply.raw.once('close', options.inFlight.enter())
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) controller.abort()
    })
    try {
      if (!options.admitted()) throw new S3Error('ServiceUnavailable', 'this peer is not a guest of the party yet; try again shortly')
      const address = addressOf(req.raw, { domain: options.domain })
      const auth = await limitedAuth(req.ip, () => authenticate(address, options.keys, options.region, now, controller.signal))
      // A presigned URL carries the x-amz-* headers it was signed with in its query (e.g. x-amz-checksum-mode).
      const hoisted = new Map(address.query.filter(([n]) => /^x-amz-/i.test(n)).map(([n, v]) => [n.toLowerCase(), v] as [string, string]))
      const call: S3Call = {
        method: req.raw.method ?? 'GET',
        bucket: address.bucket,
        key: address.key,
        query: new Map(address.query.map(([n, v]) => [n, v] as [string, string]).reverse()),
        header: (name) => headerOf(req.raw.rawHeaders, name) ?? (name.startsWith('x-amz-') ? hoisted.get(name) : undefined),
        raw: req.raw,
        ...auth,
      }
      const chosen = route(call)
      op = chosen.op
      for (const name of call.query.keys())
        if (!chosen.params.includes(name) && name !== 'x-id' && !/^x-amz-/i.test(name))
          throw new S3Error('NotImplemented', `${op} with ?${name} is not implemented`)
      if (chosen.right === 'create' && !call.principal.admin && !call.principal.createBucket)
        throw new S3Error('AccessDenied', 'this key may not create buckets (houseparty key allow KEY --create-bucket)')
      if (chosen.right !== 'create' && chosen.right !== 'none') authorize(call, call.bucket as string, chosen.right)
      await chosen.run(call, reply, controller.signal)
      options.metrics.s3Requests.inc({ op, code: 'OK' })
    } catch (err) {
      const e = toS3Error(err)
      options.metrics.s3Requests.inc({ op, code: e.code })
      if (e.status >= 500) options.logger.warn({ op, code: e.code, url: req.raw.url?.slice(0, 300), reason: e.message }, 's3 request failed')
      else options.logger.debug({ op, code: e.code, url: req.raw.url?.slice(0, 300), reason: e.message }, 's3 request refused')
      if (reply.sent || reply.raw.headersSent) {
        // An answer already under way is cut, so the client sees it fail; one already complete (an error sent
        // in a 200's body) is left to finish sending.
        if (!reply.raw.writableEnded) reply.raw.destroy(e)
        return
      }
      await sendError(req, reply, e, requestId)
    } finally {
      options.metrics.s3Seconds.observe({ op }, (performance.now() - started) / 1000)
    }
  }
  app.route({ method: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'], url: '/*', handler: handle })
  app.route({ method: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'], url: '/', handler: handle })
  return app
}

async function sendError(req: FastifyRequest, reply: FastifyReply, e: S3Error, requestId: string): Promise<void> {
  // An unread request body (a refused upload) is not drained: the connection closes after the answer.
  const hasBody = req.raw.headers['transfer-encoding'] !== undefined || Number(req.raw.headers['content-length'] ?? 0) > 0
  if (hasBody && !req.raw.readableEnded) void reply.header('connection', 'close')
  void reply.status(e.status)
  if (req.raw.method === 'HEAD') {
    await reply.send()
    return
  }
  const resource = (req.raw.url ?? '/').split('?')[0]
  const body = xmlDocument('Error', { Code: e.code, Message: e.message, ...e.extra, Resource: resource, RequestId: requestId }, false)
  await reply.type('application/xml').send(body)
}

function routeTable(deps: { files: FileService; buckets: BucketStore; region: string; now: () => number; keys: KeyStore }): (call: S3Call) => Route {
  const listing = (call: S3Call) => ({ ...deps, owner: { ID: call.accessKey, DisplayName: call.accessKey } })
  const notImplemented = (op: string): Route => ({
    op,
    right: 'none',
    params: [],
    run: async () => {
      throw new S3Error('NotImplemented', `${op} is not implemented`)
    },
  })
  return (call) => {
    const { method, bucket, key, query } = call
    const has = (name: string): boolean => query.has(name)
    if (bucket === undefined) {
      if (method === 'GET') return { op: 'ListBuckets', right: 'none', params: [], run: (c, r, s) => listBuckets(c, listing(c), r, s) }
      throw new S3Error('MethodNotAllowed', `${method} is not allowed on the service`)
    }
    if (key === undefined) {
      if (method === 'GET' && has('uploads'))
        return { op: 'ListMultipartUploads', right: 'read', params: UPLOADS, run: (c, r, s) => listUploads(c, deps, r, s) }
      if (method === 'GET' && has('location'))
        return { op: 'GetBucketLocation', right: 'read', params: ['location'], run: (c, r, s) => bucketLocation(c, deps, r, s) }
      if (method === 'GET' && has('versioning'))
        return { op: 'GetBucketVersioning', right: 'read', params: ['versioning'], run: (c, r, s) => bucketVersioning(c, deps, r, s) }
      if (method === 'GET' && query.get('list-type') === '2')
        return { op: 'ListObjectsV2', right: 'read', params: LIST_V2, run: (c, r, s) => listObjectsV2(c, listing(c), r, s) }
      if (method === 'GET') return { op: 'ListObjects', right: 'read', params: LIST_V1, run: (c, r, s) => listObjectsV1(c, listing(c), r, s) }
      if (method === 'PUT') return { op: 'CreateBucket', right: 'create', params: [], run: (c, r, s) => createBucket(c, deps, r, s) }
      if (method === 'HEAD') return { op: 'HeadBucket', right: 'read', params: [], run: (c, r, s) => headBucket(c, deps, r, s) }
      if (method === 'DELETE') return { op: 'DeleteBucket', right: 'owner', params: [], run: (c, r, s) => deleteBucket(c, deps, r, s) }
      if (method === 'POST' && has('delete')) return { op: 'DeleteObjects', right: 'write', params: ['delete'], run: (c, r, s) => deleteObjects(c, deps, r, s) }
      return notImplemented(`${method} on a bucket`)
    }
    if (method === 'POST' && has('uploads'))
      return { op: 'CreateMultipartUpload', right: 'write', params: ['uploads'], run: (c, r, s) => createUpload(c, deps, r, s) }
    if (has('uploadId')) {
      if (method === 'PUT' && call.header('x-amz-copy-source') !== undefined)
        return { op: 'UploadPartCopy', right: 'write', params: ['uploadId', 'partNumber'], run: (c, r, s) => uploadPart(c, deps, r, s) }
      if (method === 'PUT') return { op: 'UploadPart', right: 'write', params: ['uploadId', 'partNumber'], run: (c, r, s) => uploadPart(c, deps, r, s) }
      if (method === 'GET')
        return {
          op: 'ListParts',
          right: 'read',
          params: ['uploadId', 'max-parts', 'part-number-marker', 'encoding-type'],
          run: (c, r, s) => listParts(c, deps, r, s),
        }
      if (method === 'DELETE') return { op: 'AbortMultipartUpload', right: 'write', params: ['uploadId'], run: (c, r, s) => abortMultipart(c, deps, r, s) }
      if (method === 'POST') return { op: 'CompleteMultipartUpload', right: 'write', params: ['uploadId'], run: (c, r, s) => completeUpload(c, deps, r, s) }
    }
    if (has('uploads')) return notImplemented(`${method} ?uploads`)
    if (method === 'PUT' && call.header('x-amz-copy-source') !== undefined)
      return { op: 'CopyObject', right: 'write', params: [], run: (c, r, s) => copyObject(c, deps, r, s) }
    if (method === 'PUT') return { op: 'PutObject', right: 'write', params: [], run: (c, r, s) => putObject(c, deps, r, s) }
    if (method === 'GET') return { op: 'GetObject', right: 'read', params: READ, run: (c, r, s) => getObject(c, deps, r, s) }
    if (method === 'HEAD') return { op: 'HeadObject', right: 'read', params: READ, run: (c, r, s) => getObject(c, deps, r, s) }
    if (method === 'DELETE') return { op: 'DeleteObject', right: 'write', params: ['versionId'], run: (c, r, s) => deleteObject(c, deps, r, s) }
    return notImplemented(`${method} on an object`)
  }
}
