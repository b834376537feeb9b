import type { FastifyReply } from 'fastify'
import { mapLimited } from '../../shared/concurrency.ts'
import type { FileService } from '../files/index.ts'
import { type KeyStore, RIGHTS } from '../keys/index.ts'
import type { BucketStore } from './buckets.ts'
import { S3Error, toS3Error } from './errors.ts'
import { fileOf } from './names.ts'
import { removeQuietly } from './objects.ts'
import { type S3Call, smallBody } from './request.ts'
import { MAX_XML_BODY, parseXml, textOf, xmlDocument } from './xml.ts'

export interface BucketDeps {
  files: FileService
  buckets: BucketStore
  region: string
  keys: KeyStore
}

export async function createBucket(call: S3Call, deps: BucketDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  const bucket = call.bucket as string
  const acl = call.header('x-amz-acl')
  if (acl !== undefined && acl !== 'private') throw new S3Error('NotImplemented', `the canned ACL ${acl} is not supported: buckets are private`)
  if (call.header('x-amz-bucket-object-lock-enabled') === 'true') throw new S3Error('NotImplemented', 'object lock is not supported')
  const body = await smallBody(call, MAX_XML_BODY)
  if (body.length > 0) {
    const doc = parseXml(body.toString('utf8'))
    const config = doc.CreateBucketConfiguration as Record<string, unknown> | undefined
    const location = textOf(config?.LocationConstraint)
    if (location !== undefined && location !== '' && location !== deps.region)
      throw new S3Error('InvalidArgument', `the location constraint ${location} differs from this endpoint's region ${deps.region}`, {
        ArgumentName: 'LocationConstraint',
      })
  }
  await deps.buckets.create(bucket, call.accessKey, signal)
  // Whoever makes a bucket owns it (the admin key holds every right anyway).
  if (!call.principal.admin) await deps.keys.change(call.accessKey, { bucket, rights: [...RIGHTS] }, true, signal)
  await reply.status(200).header('location', `/${bucket}`).send()
}

export async function headBucket(call: S3Call, deps: BucketDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  await deps.buckets.require(call.bucket as string, signal)
  await reply.status(200).header('x-amz-bucket-region', deps.region).send()
}

export async function deleteBucket(call: S3Call, deps: BucketDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  const bucket = call.bucket as string
  await deps.buckets.remove(bucket, signal)
  // Rights on it go with it: a bucket made again under the name starts with none.
  await deps.keys.forgetBucket(bucket, signal)
  await reply.status(204).send()
}

/** us-east-1 answers an empty LocationConstraint, as S3 does; any other region names itself. */
export async function bucketLocation(call: S3Call, deps: BucketDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  await deps.buckets.require(call.bucket as string, signal)
  const body = xmlDocument('LocationConstraint', deps.region === 'us-east-1' ? {} : { '#text': deps.region })
  await reply.status(200).type('application/xml').send(body)
}

/** Buckets are never versioned: the answer says so rather than refusing the question. */
export async function bucketVersioning(call: S3Call, deps: BucketDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  await deps.buckets.require(call.bucket as string, signal)
  await reply.status(200).type('application/xml').send(xmlDocument('VersioningConfiguration', {}))
}

/** The most keys one DeleteObjects may name (S3's limit). */
const MAX_DELETE_KEYS = 1000
/** Deletes run this many at a time. */
const DELETE_CONCURRENCY = 16

export async function deleteObjects(call: S3Call, deps: BucketDeps, reply: FastifyReply, signal: AbortSignal): Promise<void> {
  const bucket = call.bucket as string
  await deps.buckets.require(bucket, signal)
  const doc = parseXml((await smallBody(call, MAX_XML_BODY)).toString('utf8'))
  const request = doc.Delete as Record<string, unknown> | undefined
  if (!request || typeof request !== 'object') throw new S3Error('MalformedXML', 'the body must be a Delete element')
  const objects = (Array.isArray(request.Object) ? request.Object : []) as Record<string, unknown>[]
  if (objects.length === 0 || objects.length > MAX_DELETE_KEYS) throw new S3Error('MalformedXML', `a Delete names 1 to ${MAX_DELETE_KEYS} objects`)
  const quiet = textOf(request.Quiet)?.trim() === 'true'
  const keys = objects.map((o) => {
    const key = textOf(o.Key)
    if (key === undefined) throw new S3Error('MalformedXML', 'every Object needs a Key')
    const version = textOf(o.VersionId)
    return { key, version }
  })
  const outcomes = await mapLimited(
    keys,
    DELETE_CONCURRENCY,
    async ({ key, version }): Promise<{ Key: string } | { Key: string; Code: string; Message: string }> => {
      try {
        if (version !== undefined && version !== 'null') throw new S3Error('NotImplemented', 'buckets are not versioned')
        await removeQuietly(deps.files, fileOf(bucket, key), signal)
        return { Key: key }
      } catch (err) {
        const e = toS3Error(err)
        return { Key: key, Code: e.code, Message: e.message }
      }
    },
  )
  const Deleted = outcomes.filter((o) => !('Code' in o) && !quiet)
  const failed = outcomes.filter((o) => 'Code' in o)
  await reply
    .status(200)
    .type('application/xml')
    .send(xmlDocument('DeleteResult', { Deleted, Error: failed }))
}
