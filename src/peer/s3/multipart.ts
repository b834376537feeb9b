import { createHash } from 'node:crypto'
import type { FastifyReply } from 'fastify'
import { mapLimited } from '../../shared/concurrency.ts'
import type { FileService } from '../files/index.ts'
import type { BucketStore } from './buckets.ts'
import { S3Error, toS3Error } from './errors.ts'
import { evaluateConditions, metaFromRequest, parseRange } from './headers.ts'
import { fileOf } from './names.ts'
import { copySource, orNoSuchKey, storeBody } from './objects.ts'
import { authorize, type S3Call, smallBody } from './request.ts'
import {
  abortUpload,
  checkPartNumber,
  checkUploadId,
  newestPerNumber,
  newUploadId,
  partFile,
  partFilesOf,
  REMOVED_AT_ONCE,
  readInfo,
  uploadDir,
  uploadsOf,
  writeInfo,
} from './uploads.ts'
import { isoTime, MAX_XML_BODY, parseXml, textOf, XML_DECLARATION, xmlDocument, xmlElement } from './xml.ts'

export interface MultipartDeps {
  files: FileService
  buckets: BucketStore
  now: () => number
}

/** Every part but the last must be at least this big (S3's rule: clients size parts by it). */
export const MIN_PART_BYTES = 5 * 1024 * 1024

const xml = (reply: FastifyReply, root: string, body: Record<string, unknown>): Promise<void> =>
  reply.status(200).type('application/xml').send(xmlDocument(root, body)) as unknown as Promise<void>

export async function createUpload(call: S3Call, deps: MultipartDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  const bucket = call.bucket as string
  const key = call.key as string
  await deps.buckets.require(bucket, signal)
  fileOf(bucket, key)
  const meta = metaFromRequest(call)
  const uploadId = newUploadId(deps.now())
  await writeInfo(deps.files, bucket, uploadId, { key, initiated: deps.now(), owner: call.accessKey, meta }, signal)
  await xml(reply, 'InitiateMultipartUploadResult', { Bucket: bucket, Key: key, UploadId: uploadId })
}

/** UploadPart, and UploadPartCopy when x-amz-copy-source is given: the part is coded and placed as it arrives. */
export async function uploadPart(call: S3Call, deps: MultipartDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  const bucket = call.bucket as string
  await deps.buckets.require(bucket, signal)
  const uploadId = checkUploadId(call.query.get('uploadId'))
  const number = checkPartNumber(call.query.get('partNumber'))
  await readInfo(deps.files, bucket, uploadId, call.key, signal)
  const name = partFile(bucket, uploadId, number)
  const copying = call.header('x-amz-copy-source')
  if (copying !== undefined) {
    await copyPart(call, deps, copying, name, reply, signal)
    return
  }
  await storeBody(call, deps.files, name, {}, reply, signal)
}

async function copyPart(call: S3Call, deps: MultipartDeps, header: string, name: string, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  const source = copySource(header)
  authorize(call, source.bucket, 'read')
  await deps.buckets.require(source.bucket, signal)
  const record = await orNoSuchKey(deps.files.record(fileOf(source.bucket, source.key), signal), 'the specified copy source does not exist')
  if (evaluateConditions((h) => call.header(h), record, 'x-amz-copy-source-') !== 'ok')
    throw new S3Error('PreconditionFailed', 'at least one of the copy source preconditions you specified did not hold')
  const rangeHeader = call.header('x-amz-copy-source-range')
  const range = parseRange(rangeHeader, record.size)
  if (rangeHeader !== undefined && range === undefined) throw new S3Error('InvalidArgument', 'x-amz-copy-source-range must be bytes=first-last')
  const [first, last] = range ?? [0, record.size - 1]
  // Only the stripes (or parts) that hold the range are read.
  const opened = await deps.files.openRecord(record, signal, range ? { first, last } : undefined)
  let etag = ''
  const result = await deps.files.put(name, opened.body, {
    signal,
    md5: true,
    sizeHint: last - first + 1,
    seal: ({ md5 }) => {
      etag = md5 ?? ''
      return { etag }
    },
  })
  await xml(reply, 'CopyPartResult', { LastModified: isoTime(Number(result.version.slice(0, 13))), ETag: `"${etag}"` })
}

export async function listParts(call: S3Call, deps: MultipartDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  const bucket = call.bucket as string
  await deps.buckets.require(bucket, signal)
  const uploadId = checkUploadId(call.query.get('uploadId'))
  const info = await readInfo(deps.files, bucket, uploadId, call.key, signal)
  const maxParts = Math.min(Number(call.query.get('max-parts') ?? 1000), 1000)
  const marker = Number(call.query.get('part-number-marker') ?? 0)
  if (!Number.isInteger(maxParts) || maxParts < 0 || !Number.isInteger(marker) || marker < 0)
    throw new S3Error('InvalidArgument', 'max-parts and part-number-marker must be non-negative integers')
  const after = newestPerNumber(await partFilesOf(deps.files, bucket, uploadId, signal)).filter((p) => p.number > marker)
  const shown = after.slice(0, maxParts)
  const truncated = after.length > shown.length
  const owner = { ID: info.owner, DisplayName: info.owner }
  await xml(reply, 'ListPartsResult', {
    Bucket: bucket,
    Key: info.key,
    UploadId: uploadId,
    Initiator: owner,
    Owner: owner,
    StorageClass: 'STANDARD',
    PartNumberMarker: marker,
    ...(truncated ? { NextPartNumberMarker: shown.at(-1)?.number } : {}),
    MaxParts: maxParts,
    IsTruncated: truncated,
    Part: shown.map((p) => ({ PartNumber: p.number, LastModified: isoTime(p.created), ETag: `"${p.etag}"`, Size: p.size })),
  })
}

export async function abortMultipart(call: S3Call, deps: MultipartDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  const bucket = call.bucket as string
  await deps.buckets.require(bucket, signal)
  const uploadId = checkUploadId(call.query.get('uploadId'))
  const info = await readInfo(deps.files, bucket, uploadId, call.key, signal)
  await abortUpload(deps.files, bucket, uploadId, info, signal)
  await reply.status(204).send()
}

/**
 * CompleteMultipartUpload: the listed parts are checked (each uploaded, its
 * ETag as given, all but the last at least 5 MiB, in ascending order), then
 * the object is recorded as made of them; parts not listed are removed.
 */
export async function completeUpload(call: S3Call, deps: MultipartDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  const bucket = call.bucket as string
  const key = call.key as string
  await deps.buckets.require(bucket, signal)
  const uploadId = checkUploadId(call.query.get('uploadId'))
  const info = await readInfo(deps.files, bucket, uploadId, key, signal)
  const doc = parseXml((await smallBody(call, MAX_XML_BODY)).toString('utf8'))
  const listed = ((doc.CompleteMultipartUpload as Record<string, unknown> | undefined)?.Part ?? []) as Record<string, unknown>[]
  if (!Array.isArray(listed) || listed.length === 0) throw new S3Error('MalformedXML', 'CompleteMultipartUpload must list at least one Part')
  const wanted = listed.map((p) => ({ number: checkPartNumber(textOf(p.PartNumber)?.trim()), etag: (textOf(p.ETag) ?? '').trim().replace(/^"|"$/g, '') }))
  for (let i = 1; i < wanted.length; i++)
    if ((wanted[i]?.number ?? 0) <= (wanted[i - 1]?.number ?? 0)) throw new S3Error('InvalidPartOrder', 'the list of parts was not in ascending order')
  const uploaded = await partFilesOf(deps.files, bucket, uploadId, signal)
  const parts = wanted.map((w, i) => {
    // The newest upload of the number with the ETag the client names (an older one may be a retry's twin).
    const part = uploaded.filter((p) => p.number === w.number && p.etag === w.etag).sort((a, b) => (a.version < b.version ? 1 : -1))[0]
    if (!part) throw new S3Error('InvalidPart', `part ${w.number} was not uploaded, or its ETag differs`)
    if (i < wanted.length - 1 && part.size < MIN_PART_BYTES)
      throw new S3Error('EntityTooSmall', `part ${w.number} is smaller than the minimum allowed size (5 MiB)`)
    return part
  })
  const md5s = Buffer.concat(parts.map((p) => Buffer.from(p.etag, 'hex')))
  const etag = `${createHash('md5').update(md5s).digest('hex')}-${parts.length}`
  const { etag: _etag, ...kept } = info.meta
  const total = parts.reduce((n, p) => n + p.size, 0)
  const finish = async (): Promise<void> => {
    await deps.files.compose(
      fileOf(bucket, key),
      parts.map((p) => ({ name: p.name, version: p.version, size: p.size })),
      { ...kept, etag },
      signal,
    )
    // The upload is over: its `upload` file goes (no more parts), and so do parts the object was not made of.
    await deps.files.remove(`${uploadDir(bucket, uploadId)}upload`, signal).catch(() => undefined)
    const used = new Set(parts.map((p) => p.name))
    await mapLimited(
      uploaded.filter((p) => !used.has(p.name)),
      REMOVED_AT_ONCE,
      (part) => deps.files.remove(part.name, signal).catch(() => undefined),
    )
  }
  const result = { Location: `/${bucket}/${key}`, Bucket: bucket, Key: key, ETag: `"${etag}"` }
  if (total >= KEEP_ALIVE_FROM_BYTES) {
    await answerWhileWorking(reply, finish, result)
    return
  }
  await finish()
  await xml(reply, 'CompleteMultipartUploadResult', result)
}

/** Completing an upload this big reads it whole (for its sha256): long enough for a client to time out waiting. */
const KEEP_ALIVE_FROM_BYTES = 64 * 1024 * 1024
const KEEP_ALIVE_EVERY_MS = 5_000

/**
 * As S3 does for a CompleteMultipartUpload that takes a while: 200 at once,
 * a space every few seconds so no client or proxy times the connection out,
 * then the result, or an Error document in the 200's body (which S3 clients
 * look for in this answer). The error is thrown on too, to be counted.
 */
async function answerWhileWorking(reply: FastifyReply, work: () => Promise<void>, result: Record<string, unknown>): Promise<void> {
  const requestId = String(reply.getHeader('x-amz-request-id') ?? '')
  reply.hijack()
  const raw = reply.raw
  raw.writeHead(200, { 'content-type': 'application/xml', 'x-amz-request-id': requestId, server: 'HouseParty' })
  raw.write(XML_DECLARATION)
  const timer = setInterval(() => raw.write(' '), KEEP_ALIVE_EVERY_MS)
  try {
    await work()
    raw.end(xmlElement('CompleteMultipartUploadResult', result))
  } catch (err) {
    const e = toS3Error(err)
    raw.end(xmlElement('Error', { Code: e.code, Message: e.message, RequestId: requestId }, false))
    throw e
  } finally {
    clearInterval(timer)
  }
}

/** ListMultipartUploads: the bucket's uploads in progress, by key then start, rolled up under `delimiter`. */
export async function listUploads(call: S3Call, deps: MultipartDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  const bucket = call.bucket as string
  await deps.buckets.require(bucket, signal)
  const prefix = call.query.get('prefix') ?? ''
  const delimiter = call.query.get('delimiter') ?? ''
  const keyMarker = call.query.get('key-marker') ?? ''
  const idMarker = call.query.get('upload-id-marker') ?? ''
  const max = Math.min(Number(call.query.get('max-uploads') ?? 1000), 1000)
  if (!Number.isInteger(max) || max < 0) throw new S3Error('InvalidArgument', 'max-uploads must be a non-negative integer')
  const all = (await uploadsOf(deps.files, bucket, signal))
    .filter((u) => u.key.startsWith(prefix))
    .filter((u) => u.key > keyMarker || (u.key === keyMarker && idMarker !== '' && u.uploadId > idMarker))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.uploadId < b.uploadId ? -1 : 1))
  const uploads: typeof all = []
  const prefixes: string[] = []
  let truncated = false
  for (const u of all) {
    const cut = delimiter === '' ? -1 : u.key.indexOf(delimiter, prefix.length)
    const rolled = cut < 0 ? undefined : u.key.slice(0, cut + delimiter.length)
    if (rolled !== undefined && prefixes.at(-1) === rolled) continue
    if (uploads.length + prefixes.length >= max) {
      truncated = true
      break
    }
    if (rolled !== undefined) prefixes.push(rolled)
    else uploads.push(u)
  }
  const last = uploads.at(-1)
  await xml(reply, 'ListMultipartUploadsResult', {
    Bucket: bucket,
    KeyMarker: keyMarker,
    UploadIdMarker: idMarker,
    ...(truncated && last ? { NextKeyMarker: last.key, NextUploadIdMarker: last.uploadId } : {}),
    Prefix: prefix,
    ...(delimiter === '' ? {} : { Delimiter: delimiter }),
    MaxUploads: max,
    IsTruncated: truncated,
    Upload: uploads.map((u) => ({
      Key: u.key,
      UploadId: u.uploadId,
      Initiator: { ID: u.owner, DisplayName: u.owner },
      Owner: { ID: u.owner, DisplayName: u.owner },
      StorageClass: 'STANDARD',
      Initiated: isoTime(u.initiated),
    })),
    CommonPrefixes: prefixes.map((p) => ({ Prefix: p })),
  })
}
