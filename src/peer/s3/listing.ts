import type { FastifyReply } from 'fastify'
import type { FilePage, FileService } from '../files/index.ts'
import { MAX_NAME_BYTES } from '../protocol/index.ts'
import { encodeToken } from '../tracker/index.ts'
import type { BucketStore } from './buckets.ts'
import { S3Error } from './errors.ts'
import type { S3Call } from './request.ts'
import { uriEncode } from './sigv4.ts'
import { isoTime, xmlDocument } from './xml.ts'

/** The most keys one listing page returns, whatever max-keys asks (S3's limit). */
export const MAX_KEYS = 1000

export interface ListingDeps {
  files: FileService
  buckets: BucketStore
  /** The Owner element of listings that show owners. */
  owner: { ID: string; DisplayName: string }
}

interface ListArgs {
  prefix: string
  delimiter: string
  maxKeys: number
  urlEncoded: boolean
}

function listArgs(call: S3Call): ListArgs {
  const prefix = call.query.get('prefix') ?? ''
  const delimiter = call.query.get('delimiter') ?? ''
  const text = call.query.get('max-keys')
  const maxKeys = text === undefined ? MAX_KEYS : Number(text)
  if (!Number.isInteger(maxKeys) || maxKeys < 0) throw new S3Error('InvalidArgument', 'max-keys must be a non-negative integer')
  const encoding = call.query.get('encoding-type')
  if (encoding !== undefined && encoding !== 'url') throw new S3Error('InvalidArgument', 'Invalid Encoding Method specified in Request')
  if (Buffer.byteLength(prefix) > MAX_NAME_BYTES || Buffer.byteLength(delimiter) > 64)
    throw new S3Error('InvalidArgument', 'the prefix or delimiter is too long')
  return { prefix, delimiter, maxKeys: Math.min(maxKeys, MAX_KEYS), urlEncoded: encoding === 'url' }
}

/** One page of a bucket's keys: the bucket's files, its "BUCKET/" taken off every name. */
async function pageOf(
  deps: ListingDeps,
  bucket: string,
  args: ListArgs,
  start: { after: string } | { token: string },
  signal: AbortSignal,
): Promise<FilePage | undefined> {
  if (args.maxKeys === 0) return undefined
  return deps.files.page(
    {
      prefix: `${bucket}/${args.prefix}`,
      delimiter: args.delimiter,
      after: 'after' in start && start.after !== '' ? `${bucket}/${start.after}` : '',
      token: 'token' in start ? start.token : '',
      limit: args.maxKeys,
    },
    signal,
  )
}

function contentsOf(
  page: FilePage | undefined,
  bucket: string,
  args: ListArgs,
  owner?: ListingDeps['owner'],
): { Contents: unknown[]; CommonPrefixes: unknown[]; last: string | undefined } {
  const strip = (name: string): string => name.slice(bucket.length + 1)
  const show = (key: string): string => (args.urlEncoded ? key.split('/').map(uriEncode).join('/') : key)
  const files = page?.files ?? []
  const prefixes = page?.prefixes ?? []
  const Contents = files.map((f) => ({
    Key: show(strip(f.name)),
    LastModified: isoTime(f.created),
    ETag: `"${f.etag ?? f.hash}"`,
    Size: f.size,
    StorageClass: 'STANDARD',
    ...(owner ? { Owner: owner } : {}),
  }))
  const CommonPrefixes = prefixes.map((p) => ({ Prefix: show(strip(p)) }))
  const names = [...files.map((f) => strip(f.name)), ...prefixes.map(strip)].sort()
  return { Contents, CommonPrefixes, last: names.at(-1) }
}

export async function listObjectsV2(call: S3Call, deps: ListingDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  const bucket = call.bucket as string
  await deps.buckets.require(bucket, signal)
  const args = listArgs(call)
  const token = call.query.get('continuation-token')
  const startAfter = call.query.get('start-after') ?? ''
  if (token === '') throw new S3Error('InvalidArgument', 'the continuation token provided is incorrect')
  const page = await pageOf(deps, bucket, args, token === undefined ? { after: startAfter } : { token }, signal)
  const { Contents, CommonPrefixes } = contentsOf(page, bucket, args, call.query.get('fetch-owner') === 'true' ? deps.owner : undefined)
  const truncated = page?.truncated === true && page.next !== undefined
  const show = (text: string): string => (args.urlEncoded ? text.split('/').map(uriEncode).join('/') : text)
  const body = xmlDocument('ListBucketResult', {
    Name: bucket,
    Prefix: show(args.prefix),
    ...(args.delimiter === '' ? {} : { Delimiter: show(args.delimiter) }),
    MaxKeys: args.maxKeys,
    KeyCount: Contents.length + CommonPrefixes.length,
    IsTruncated: truncated,
    ...(token === undefined ? {} : { ContinuationToken: token }),
    ...(truncated ? { NextContinuationToken: page?.next } : {}),
    ...(startAfter === '' ? {} : { StartAfter: show(startAfter) }),
    ...(args.urlEncoded ? { EncodingType: 'url' } : {}),
    Contents,
    CommonPrefixes,
  })
  await reply.status(200).type('application/xml').send(body)
}

/**
 * ListObjects (version 1): `marker` is where the page starts. A marker that
 * is a common prefix (ends with the delimiter) skips every key under it, so
 * a rolled-up prefix is never listed twice.
 */
export async function listObjectsV1(call: S3Call, deps: ListingDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  const bucket = call.bucket as string
  await deps.buckets.require(bucket, signal)
  const args = listArgs(call)
  const marker = call.query.get('marker') ?? ''
  const rolledUp = marker !== '' && args.delimiter !== '' && marker.endsWith(args.delimiter) && marker.startsWith(args.prefix)
  const start = rolledUp ? { token: encodeToken({ after: `${bucket}/${marker}`, skip: true }) } : { after: marker }
  const page = await pageOf(deps, bucket, args, start, signal)
  const { Contents, CommonPrefixes, last } = contentsOf(page, bucket, args, deps.owner)
  const truncated = page?.truncated === true
  const show = (text: string): string => (args.urlEncoded ? text.split('/').map(uriEncode).join('/') : text)
  const body = xmlDocument('ListBucketResult', {
    Name: bucket,
    Prefix: show(args.prefix),
    Marker: show(marker),
    ...(args.delimiter === '' ? {} : { Delimiter: show(args.delimiter) }),
    MaxKeys: args.maxKeys,
    IsTruncated: truncated,
    ...(truncated && last !== undefined ? { NextMarker: show(last) } : {}),
    ...(args.urlEncoded ? { EncodingType: 'url' } : {}),
    Contents,
    CommonPrefixes,
  })
  await reply.status(200).type('application/xml').send(body)
}

/** ListBuckets: the buckets the request's key holds any right on (every bucket, for the admin key). */
export async function listBuckets(call: S3Call, deps: ListingDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  const buckets = (await deps.buckets.list(signal)).filter((b) => call.principal.admin || (call.principal.buckets[b.name]?.length ?? 0) > 0)
  const body = xmlDocument('ListAllMyBucketsResult', {
    Owner: deps.owner,
    Buckets: { Bucket: buckets.map((b) => ({ Name: b.name, CreationDate: isoTime(b.created) })) },
  })
  await reply.status(200).type('application/xml').send(body)
}
