import { Readable } from 'node:stream'
import type { FastifyReply } from 'fastify'
import { isHousePartyError } from '../../shared/errors.ts'
import { streamBody } from '../api/index.ts'
import type { FileService } from '../files/index.ts'
import { type FileRecord, type ObjectMeta, partsOf } from '../protocol/index.ts'
import type { BucketStore } from './buckets.ts'
import { BodyDigests, checkContentMd5 } from './checksums.ts'
import { S3Error } from './errors.ts'
import { etagOf, evaluateConditions, metaFromRequest, parseRange, writeObjectHeaders } from './headers.ts'
import { fileOf } from './names.ts'
import { authorize, objectBody, type S3Call } from './request.ts'
import { xmlDocument } from './xml.ts'

export interface ObjectDeps {
  files: FileService
  buckets: BucketStore
}

/** Objects up to this size are answered from memory in one write; larger ones stream. */
const WHOLE_REPLY_BYTES = 256 * 1024

export async function putObject(call: S3Call, deps: ObjectDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  const bucket = call.bucket as string
  await deps.buckets.require(bucket, signal)
  await storeBody(call, deps.files, fileOf(bucket, call.key as string), metaFromRequest(call), reply, signal)
}

/**
 * Stores the request's body as file `name` (PutObject, UploadPart): its MD5 is the ETag, the digests the
 * client declared (Content-MD5, x-amz-content-sha256, x-amz-checksum-*) are checked before the file is
 * recorded, and the answer gives the ETag and the checksums.
 */
export async function storeBody(call: S3Call, files: FileService, name: string, kept: ObjectMeta, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  const contentMd5 = checkContentMd5(call.header('content-md5'))
  const body = objectBody(call)
  const digests = new BodyDigests(body.algorithms)
  let meta: ObjectMeta | undefined
  await files.put(name, digests.pass(body.body), {
    signal,
    md5: true,
    ...(body.length === undefined ? {} : { sizeHint: body.length }),
    seal: ({ hash, md5 }) => {
      if (body.sha256 !== undefined && body.sha256 !== hash)
        throw new S3Error('XAmzContentSHA256Mismatch', 'the provided x-amz-content-sha256 header does not match what was computed')
      const etag = md5 ?? ''
      const checksums = digests.check(etag, contentMd5, body.declared())
      meta = { ...kept, etag, ...(Object.keys(checksums).length > 0 ? { checksums } : {}) }
      return meta
    },
  })
  void reply.header('etag', `"${meta?.etag}"`)
  for (const [algorithm, value] of Object.entries(meta?.checksums ?? {})) void reply.header(`x-amz-checksum-${algorithm}`, value)
  await reply.status(200).send()
}

/** GetObject and HeadObject: conditional headers, a single Range, the stored headers. */
export async function getObject(call: S3Call, deps: ObjectDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  const bucket = call.bucket as string
  await deps.buckets.require(bucket, signal)
  const name = fileOf(bucket, call.key as string)
  // A whole GET opens the file at once (one tracker lookup, k fragments opened); a HEAD, or a GET of a range,
  // looks the record up first, so that a range opens only the stripes (or parts) that hold it.
  const ranged = call.header('range') !== undefined || call.query.has('partNumber')
  const whole = call.method === 'HEAD' || ranged ? undefined : await orNoSuchKey(deps.files.open(name, signal))
  const record = whole?.record ?? (await orNoSuchKey(deps.files.record(name, signal)))
  const close = async (): Promise<void> => void (await whole?.body.return(undefined))
  const condition = evaluateConditions((h) => call.header(h), record)
  if (condition !== 'ok') await close()
  if (condition === 'failed') throw new S3Error('PreconditionFailed', 'at least one of the preconditions you specified did not hold')
  if (condition === 'not-modified') {
    await reply.status(304).header('etag', etagOf(record)).header('last-modified', new Date(record.created).toUTCString()).send()
    return
  }
  const range = call.query.has('partNumber') ? partRange(record, call.query.get('partNumber') as string) : parseRange(call.header('range'), record.size)
  writeObjectHeaders(reply, call, record, range === undefined)
  const [first, last] = range ?? [0, record.size - 1]
  const length = Math.max(0, last - first + 1)
  void reply.header('content-length', String(length))
  if (range) void reply.header('content-range', `bytes ${first}-${last}/${record.size}`)
  if (record.parts && call.query.has('partNumber')) void reply.header('x-amz-mp-parts-count', String(record.parts.each.length))
  const status = range ? 206 : 200
  if (call.method === 'HEAD' || length === 0) {
    await close()
    await reply.status(status).send()
    return
  }
  const opened = whole ?? (await deps.files.openRecord(record, signal, range ? { first, last } : undefined))
  if (length <= WHOLE_REPLY_BYTES) {
    // Read whole before the answer starts: a file that fails its hash gets an error status, not a short body.
    const pieces: Buffer[] = []
    for await (const piece of opened.body) pieces.push(piece)
    await reply.status(status).send(pieces.length === 1 ? pieces[0] : Buffer.concat(pieces))
    return
  }
  // A whole object is written by streamBody, which gives each piece back for reuse once the socket has taken it.
  if (opened.recycle && status === 200) await streamBody(reply.status(status), opened, false)
  else await reply.status(status).send(Readable.from(opened.body, { objectMode: false }))
}

/** GetObject ?partNumber=N: the bytes of part N of a multipart object; part 1 of any other is the whole object. */
function partRange(record: FileRecord, text: string): [number, number] | undefined {
  const n = Number(text)
  const parts = partsOf(record)
  const count = record.parts ? parts.length : 1
  if (!Number.isInteger(n) || n < 1 || n > count)
    throw new S3Error('InvalidPart', `part ${text} does not exist: the object has ${count} part${count === 1 ? '' : 's'}`)
  if (!record.parts) return undefined
  let first = 0
  for (const part of parts.slice(0, n - 1)) first += part.size
  const size = parts[n - 1]?.size ?? 0
  return size === 0 ? undefined : [first, first + size - 1]
}

/** The file layer's "no such file" in S3's words. */
export async function orNoSuchKey<T>(work: Promise<T>, message = 'the specified key does not exist'): Promise<T> {
  try {
    return await work
  } catch (err) {
    if (isHousePartyError(err, 'ERR_FILE_NOT_FOUND')) throw new S3Error('NoSuchKey', message)
    throw err
  }
}

/** DeleteObject answers 204 whether or not the key existed, as S3 does. */
export async function deleteObject(call: S3Call, deps: ObjectDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  const bucket = call.bucket as string
  await deps.buckets.require(bucket, signal)
  await removeQuietly(deps.files, fileOf(bucket, call.key as string), signal)
  await reply.status(204).send()
}

export async function removeQuietly(files: FileService, name: string, signal?: AbortSignal): Promise<void> {
  try {
    await files.remove(name, signal)
  } catch (err) {
    if (!isHousePartyError(err, 'ERR_FILE_NOT_FOUND')) throw err
  }
}

/**
 * CopyObject, server side: the source is read and put again under the new
 * name, streamed (no whole-object buffer). Its headers and metadata are
 * copied, or replaced with the request's (x-amz-metadata-directive: REPLACE).
 */
export async function copyObject(call: S3Call, deps: ObjectDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  const bucket = call.bucket as string
  await deps.buckets.require(bucket, signal)
  const name = fileOf(bucket, call.key as string)
  const source = copySource(call.header('x-amz-copy-source') as string)
  authorize(call, source.bucket, 'read')
  await deps.buckets.require(source.bucket, signal)
  const sourceName = fileOf(source.bucket, source.key)
  const directive = (call.header('x-amz-metadata-directive') ?? 'COPY').toUpperCase()
  if (directive !== 'COPY' && directive !== 'REPLACE') throw new S3Error('InvalidArgument', 'x-amz-metadata-directive must be COPY or REPLACE')
  if (sourceName === name && directive === 'COPY')
    throw new S3Error(
      'InvalidRequest',
      "this copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes",
    )
  const opened = await orNoSuchKey(deps.files.open(sourceName, signal), 'the specified copy source does not exist')
  const condition = evaluateConditions((h) => call.header(h), opened.record, 'x-amz-copy-source-')
  if (condition !== 'ok') {
    await opened.body.return(undefined)
    throw new S3Error('PreconditionFailed', 'at least one of the copy source preconditions you specified did not hold')
  }
  const kept = directive === 'COPY' ? copiedMeta(opened.record.meta) : metaFromRequest(call)
  let etag = ''
  const result = await deps.files.put(name, opened.body, {
    signal,
    md5: true,
    sizeHint: opened.record.size,
    // A new object put in one piece: its ETag is its MD5, whatever the source's was (a multipart source's is not).
    seal: ({ md5 }) => {
      etag = md5 ?? ''
      return { ...kept, etag }
    },
  })
  const body = xmlDocument('CopyObjectResult', { LastModified: new Date(Number(result.version.slice(0, 13))).toISOString(), ETag: `"${etag}"` })
  await reply.status(200).type('application/xml').send(body)
}

/** Headers and user metadata carry over; checksums do too (same bytes), the ETag is set by the copy. */
function copiedMeta(meta: ObjectMeta | undefined): ObjectMeta {
  if (!meta) return {}
  const { etag: _etag, ...rest } = meta
  return rest
}

/** `x-amz-copy-source: [/]BUCKET/KEY[?versionId=…]`, URL-encoded. */
export function copySource(header: string): { bucket: string; key: string } {
  const [path = '', query] = header.split('?')
  if (query !== undefined && query !== '' && query !== 'versionId=null')
    throw new S3Error('NotImplemented', 'copying a version other than the current one is not supported')
  let decoded: string
  try {
    decoded = decodeURIComponent(path.replace(/^\//, ''))
  } catch {
    throw new S3Error('InvalidArgument', 'x-amz-copy-source has a malformed percent-encoding')
  }
  const slash = decoded.indexOf('/')
  if (slash <= 0 || slash === decoded.length - 1) throw new S3Error('InvalidArgument', 'x-amz-copy-source must be BUCKET/KEY')
  return { bucket: decoded.slice(0, slash), key: decoded.slice(slash + 1) }
}
