import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { connect } from 'node:net'
import { before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketAclCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import type { LocalParty } from '../../src/cli/local-party.ts'
import { bytesOf, sha256 } from '../helpers/files.ts'
import { CLI, metric, partiesForThisFile, partyHealth, startParty } from '../helpers/party.ts'
import { waitFor } from '../helpers/wait.ts'

const newParty = partiesForThisFile()
const run = promisify(execFile)
const MiB = 1024 * 1024
const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex')

function client(
  party: LocalParty,
  peer: number,
  options: { secret?: string; accessKeyId?: string; offsetMs?: number; checksums?: 'WHEN_REQUIRED' } = {},
): S3Client {
  const s3 = new S3Client({
    ...(options.checksums ? { requestChecksumCalculation: options.checksums } : {}),
    endpoint: `http://127.0.0.1:${party.peer(peer).s3Port}`,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: options.accessKeyId ?? party.s3Key.accessKeyId, secretAccessKey: options.secret ?? party.s3Key.secretAccessKey },
    maxAttempts: 1,
  })
  if (options.offsetMs !== undefined) s3.config.systemClockOffset = options.offsetMs
  return s3
}

/** The S3 error code a call fails with (and its HTTP status). */
async function failure(p: Promise<unknown>): Promise<{ code: string; status: number | undefined }> {
  try {
    await p
  } catch (err) {
    if (err instanceof S3ServiceException) return { code: err.name, status: err.$metadata.httpStatusCode }
    throw err
  }
  assert.fail('expected the call to fail')
}

async function bodyOf(s3: S3Client, Bucket: string, Key: string, extra: Record<string, unknown> = {}): Promise<Buffer> {
  const got = await s3.send(new GetObjectCommand({ Bucket, Key, ...extra }))
  return Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray())
}

describe('the S3 API on a party of 3 real peers (2+1), with the AWS SDK', () => {
  let party: LocalParty
  let s3: S3Client
  before(async () => {
    ;({ party } = await newParty(3))
    await startParty(party, 3)
    s3 = client(party, 0)
  })

  it('creates, finds, lists and deletes buckets; a bucket is a file of the party', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'photos' }))
    await client(party, 1).send(new HeadBucketCommand({ Bucket: 'photos' }))
    const listed = await client(party, 2).send(new ListBucketsCommand({}))
    assert.deepEqual(
      listed.Buckets?.map((b) => b.Name),
      ['photos'],
    )
    assert.equal((await s3.send(new GetBucketLocationCommand({ Bucket: 'photos' }))).LocationConstraint, undefined)
    assert.equal((await failure(s3.send(new CreateBucketCommand({ Bucket: 'photos' })))).code, 'BucketAlreadyOwnedByYou')
    assert.equal((await failure(s3.send(new CreateBucketCommand({ Bucket: 'Bad_Name' })))).code, 'InvalidBucketName')
    assert.deepEqual(await failure(s3.send(new HeadBucketCommand({ Bucket: 'nothing-here' }))), { code: 'NotFound', status: 404 })
    await s3.send(new CreateBucketCommand({ Bucket: 'scratch' }))
    await s3.send(new PutObjectCommand({ Bucket: 'scratch', Key: 'x', Body: 'x' }))
    assert.equal((await failure(s3.send(new DeleteBucketCommand({ Bucket: 'scratch' })))).code, 'BucketNotEmpty')
    await s3.send(new DeleteObjectCommand({ Bucket: 'scratch', Key: 'x' }))
    await s3.send(new DeleteBucketCommand({ Bucket: 'scratch' }))
    assert.equal((await failure(s3.send(new PutObjectCommand({ Bucket: 'scratch', Key: 'y', Body: 'y' })))).code, 'NoSuchBucket')
    const native = (await (await fetch(`http://${party.peer(0).api}/files?prefix=.s3/buckets/`)).json()) as { files: { name: string }[] }
    assert.deepEqual(
      native.files.map((f) => f.name),
      ['.s3/buckets/photos'],
    )
    // Readable natively, written only through S3: a native put or delete there is refused.
    const refused = await fetch(`http://${party.peer(0).api}/files/.s3/buckets/photos`, { method: 'DELETE' })
    assert.equal(refused.status, 400)
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'ERR_BAD_NAME')
    assert.equal((await fetch(`http://${party.peer(0).api}/files/.s3/buckets/forged`, { method: 'PUT', body: '{}' })).status, 400)
    await s3.send(new HeadBucketCommand({ Bucket: 'photos' }))
  })

  it('stores an object with its headers and metadata; the native API reads the same bytes', async () => {
    const data = bytesOf(300_000, 1)
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: 'photos',
        Key: 'trips/ü 1+1.jpg',
        Body: data,
        ContentType: 'image/jpeg',
        CacheControl: 'max-age=60',
        ContentDisposition: 'attachment',
        Metadata: { camera: 'pinhole', 'taken-by': 'Ann' },
      }),
    )
    assert.equal(put.ETag, `"${md5(data)}"`)
    const got = await client(party, 2).send(new GetObjectCommand({ Bucket: 'photos', Key: 'trips/ü 1+1.jpg' }))
    assert.equal(got.ETag, `"${md5(data)}"`)
    assert.equal(got.ContentType, 'image/jpeg')
    assert.equal(got.CacheControl, 'max-age=60')
    assert.equal(got.ContentDisposition, 'attachment')
    assert.deepEqual(got.Metadata, { camera: 'pinhole', 'taken-by': 'Ann' })
    assert.equal(sha256(Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray())), sha256(data))
    const native = await fetch(`http://${party.peer(1).api}/files/photos/trips/${encodeURIComponent('ü 1+1.jpg')}`)
    assert.equal(native.status, 200)
    assert.equal(sha256(Buffer.from(await native.arrayBuffer())), sha256(data))
  })

  it('serves ranges and conditional reads as S3 does', async () => {
    const data = bytesOf(1_000_000, 2)
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'ranged', Body: data }))
    const part = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'ranged', Range: 'bytes=999990-' }))
    assert.equal(part.ContentRange, 'bytes 999990-999999/1000000')
    assert.deepEqual(Buffer.from(await (part.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()), data.subarray(999_990))
    assert.deepEqual(await bodyOf(s3, 'photos', 'ranged', { Range: 'bytes=1000-1999' }), data.subarray(1000, 2000))
    assert.deepEqual(await bodyOf(s3, 'photos', 'ranged', { Range: 'bytes=-10' }), data.subarray(-10))
    // Ranges of a file of several stripes are read from the stripes that hold them.
    const striped = bytesOf(3 * MiB + 5, 20)
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'striped', Body: striped }))
    for (const [first, last] of [
      [MiB + MiB / 2, 2 * MiB + 3],
      [MiB, MiB],
      [3 * MiB - 1, 3 * MiB + 4],
      [0, 3 * MiB + 4],
    ] as const) {
      assert.deepEqual(
        await bodyOf(client(party, 2), 'photos', 'striped', { Range: `bytes=${first}-${last}` }),
        striped.subarray(first, last + 1),
        `${first}-${last}`,
      )
    }
    assert.equal((await failure(s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'ranged', Range: 'bytes=2000000-' })))).code, 'InvalidRange')
    const etag = `"${md5(data)}"`
    assert.equal((await failure(s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'ranged', IfNoneMatch: etag })))).status, 304)
    assert.equal((await failure(s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'ranged', IfMatch: '"0000"' })))).code, 'PreconditionFailed')
    assert.equal(
      (await failure(s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'ranged', IfModifiedSince: new Date(Date.now() + 60_000) })))).status,
      304,
    )
    await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'ranged', IfMatch: etag, IfUnmodifiedSince: new Date(Date.now() + 60_000) }))
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'ranged' }))
    assert.equal(head.ContentLength, 1_000_000)
    assert.deepEqual(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'none' }))), { code: 'NotFound', status: 404 })
    assert.equal((await failure(s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'none' })))).code, 'NoSuchKey')
  })

  it('checks and keeps the checksums a client sends', async () => {
    const data = bytesOf(50_000, 3)
    for (const ChecksumAlgorithm of ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA256', 'SHA1'] as const) {
      const put = await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: `sum-${ChecksumAlgorithm}`, Body: data, ChecksumAlgorithm }))
      const head = await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: `sum-${ChecksumAlgorithm}`, ChecksumMode: 'ENABLED' }))
      const field = `Checksum${ChecksumAlgorithm}` as const
      assert.ok(put[field], `${field} answered`)
      assert.equal(head[field], put[field])
    }
    const wrong = s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'bad-sum', Body: data, ChecksumCRC32: 'AAAAAA==' }))
    assert.equal((await failure(wrong)).code, 'BadDigest')
    assert.equal((await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'bad-sum' })))).status, 404)
  })

  it('lists keys in order, a page at a time, with prefixes, delimiters, start-after and markers', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'logs' }))
    const keys = [...Array(25).keys()].map((i) => `app/${i % 3}/log-${String(i).padStart(2, '0')}.txt`).concat(['top.txt', 'zz/a b.txt'])
    await Promise.all(keys.map((Key) => s3.send(new PutObjectCommand({ Bucket: 'logs', Key, Body: Key }))))
    const sorted = [...keys].sort()
    const seen: string[] = []
    let ContinuationToken: string | undefined
    let pages = 0
    do {
      const page = await client(party, pages % 3).send(new ListObjectsV2Command({ Bucket: 'logs', MaxKeys: 10, ContinuationToken }))
      seen.push(...(page.Contents ?? []).map((c) => c.Key as string))
      assert.equal(page.KeyCount, page.Contents?.length)
      ContinuationToken = page.NextContinuationToken
      pages++
    } while (ContinuationToken)
    assert.deepEqual(seen, sorted)
    assert.equal(pages, 3)
    const rolled = await s3.send(new ListObjectsV2Command({ Bucket: 'logs', Delimiter: '/' }))
    assert.deepEqual(
      rolled.CommonPrefixes?.map((p) => p.Prefix),
      ['app/', 'zz/'],
    )
    assert.deepEqual(
      rolled.Contents?.map((c) => [c.Key, c.Size, c.ETag]),
      [['top.txt', 7, `"${md5(Buffer.from('top.txt'))}"`]],
    )
    const under = await s3.send(new ListObjectsV2Command({ Bucket: 'logs', Prefix: 'app/1/', StartAfter: 'app/1/log-04.txt' }))
    assert.deepEqual(
      under.Contents?.map((c) => c.Key),
      sorted.filter((k) => k.startsWith('app/1/') && k > 'app/1/log-04.txt'),
    )
    const encoded = await s3.send(new ListObjectsV2Command({ Bucket: 'logs', Prefix: 'zz/', EncodingType: 'url' }))
    assert.deepEqual(
      encoded.Contents?.map((c) => c.Key),
      ['zz/a%20b.txt'],
    )
    const v1: string[] = []
    let Marker: string | undefined
    for (;;) {
      const page = await s3.send(new ListObjectsCommand({ Bucket: 'logs', Delimiter: '/', Prefix: 'app/', MaxKeys: 2, Marker }))
      v1.push(...(page.CommonPrefixes ?? []).map((p) => p.Prefix as string), ...(page.Contents ?? []).map((c) => c.Key as string))
      if (!page.IsTruncated) break
      Marker = page.NextMarker
    }
    assert.deepEqual(v1, ['app/0/', 'app/1/', 'app/2/'])
  })

  it('copies objects server-side, keeping or replacing their metadata, and deletes many at once', async () => {
    const data = bytesOf(70_000, 4)
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'orig', Body: data, ContentType: 'text/plain', Metadata: { a: '1' } }))
    const copied = await s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'copy', CopySource: 'photos/orig' }))
    assert.equal(copied.CopyObjectResult?.ETag, `"${md5(data)}"`)
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'copy' }))
    assert.equal(head.ContentType, 'text/plain')
    assert.deepEqual(head.Metadata, { a: '1' })
    await s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'orig', CopySource: 'photos/orig', MetadataDirective: 'REPLACE', Metadata: { b: '2' } }))
    assert.deepEqual((await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'orig' }))).Metadata, { b: '2' })
    assert.equal((await failure(s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'orig', CopySource: 'photos/orig' })))).code, 'InvalidRequest')
    const deleted = await s3.send(new DeleteObjectsCommand({ Bucket: 'photos', Delete: { Objects: [{ Key: 'orig' }, { Key: 'copy' }, { Key: 'never-was' }] } }))
    assert.deepEqual(deleted.Deleted?.map((d) => d.Key).sort(), ['copy', 'never-was', 'orig'])
    assert.equal((await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'copy' })))).status, 404)
  })

  it('uploads in parts, lists and completes them, and reads the object back whole through every API', async () => {
    const parts = [bytesOf(5 * MiB, 5), bytesOf(5 * MiB, 6), bytesOf(1234, 7)]
    const whole = Buffer.concat(parts)
    const { UploadId } = await s3.send(
      new CreateMultipartUploadCommand({ Bucket: 'photos', Key: 'big/video.bin', ContentType: 'video/mp4', Metadata: { take: '3' } }),
    )
    assert.ok(UploadId)
    const etags = await Promise.all(
      parts.map(
        async (Body, i) =>
          (await client(party, i).send(new UploadPartCommand({ Bucket: 'photos', Key: 'big/video.bin', UploadId, PartNumber: i + 1, Body }))).ETag,
      ),
    )
    assert.deepEqual(
      etags,
      parts.map((p) => `"${md5(p)}"`),
    )
    const listed = await s3.send(new ListPartsCommand({ Bucket: 'photos', Key: 'big/video.bin', UploadId }))
    assert.deepEqual(
      listed.Parts?.map((p) => [p.PartNumber, p.Size]),
      [
        [1, 5 * MiB],
        [2, 5 * MiB],
        [3, 1234],
      ],
    )
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'photos' }))
    assert.deepEqual(
      uploads.Uploads?.map((u) => [u.Key, u.UploadId]),
      [['big/video.bin', UploadId]],
    )
    const tooSmall = s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'photos',
        Key: 'big/video.bin',
        UploadId,
        MultipartUpload: {
          Parts: [
            { PartNumber: 3, ETag: etags[2] },
            { PartNumber: 1, ETag: etags[0] },
          ],
        },
      }),
    )
    assert.equal((await failure(tooSmall)).code, 'InvalidPartOrder')
    const done = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'photos',
        Key: 'big/video.bin',
        UploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })) },
      }),
    )
    const expected = `"${createHash('md5')
      .update(Buffer.concat(parts.map((p) => Buffer.from(md5(p), 'hex'))))
      .digest('hex')}-3"`
    assert.equal(done.ETag, expected)
    assert.equal(sha256(await bodyOf(client(party, 1), 'photos', 'big/video.bin')), sha256(whole))
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'big/video.bin' }))
    assert.equal(head.ContentLength, whole.length)
    assert.equal(head.ContentType, 'video/mp4')
    assert.equal(head.ETag, expected)
    assert.deepEqual(await bodyOf(s3, 'photos', 'big/video.bin', { Range: `bytes=${5 * MiB - 10}-${5 * MiB + 9}` }), whole.subarray(5 * MiB - 10, 5 * MiB + 10))
    const second = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'big/video.bin', PartNumber: 2 }))
    assert.equal(second.PartsCount, 3)
    assert.equal(second.ContentLength, 5 * MiB)
    const native = await fetch(`http://${party.peer(2).api}/files/photos/big/video.bin`)
    assert.equal(native.headers.get('etag'), `"${sha256(whole)}"`)
    assert.equal(sha256(Buffer.from(await native.arrayBuffer())), sha256(whole))
    assert.equal((await failure(s3.send(new ListPartsCommand({ Bucket: 'photos', Key: 'big/video.bin', UploadId })))).code, 'NoSuchUpload')

    // Overwriting the object releases its parts.
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'big/video.bin', Body: 'small now' }))
    await waitFor(
      'the parts of the replaced object to go',
      async () => {
        const page = (await (await fetch(`http://${party.peer(0).api}/files?prefix=.s3/uploads/photos/${UploadId}/`)).json()) as { files: unknown[] }
        return page.files.length === 0
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    )
  })

  it('uploads with @aws-sdk/lib-storage, 8 parts in parallel, and through presigned PUT and GET URLs', async () => {
    // Over 64 MiB: the completion answers 200 at once and keeps the connection alive while it reads the parts.
    const body = bytesOf(66 * MiB + 17, 11)
    const upload = new Upload({ client: client(party, 1), params: { Bucket: 'photos', Key: 'lib/storage.bin', Body: body }, queueSize: 8, partSize: 5 * MiB })
    const done = await upload.done()
    assert.match(done.ETag ?? '', /^"[0-9a-f]{32}-14"$/)
    assert.equal(sha256(await bodyOf(client(party, 2), 'photos', 'lib/storage.bin')), sha256(body))
    const data = bytesOf(123_456, 12)
    // A presigned PUT carries no checksum of a body it has not seen (by default the SDK would sign the empty body's CRC32).
    const presigner = client(party, 0, { checksums: 'WHEN_REQUIRED' })
    const putUrl = await getSignedUrl(presigner, new PutObjectCommand({ Bucket: 'photos', Key: 'presigned.bin' }), { expiresIn: 60 })
    assert.equal((await fetch(putUrl, { method: 'PUT', body: data })).status, 200)
    const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'photos', Key: 'presigned.bin' }), { expiresIn: 60 })
    assert.equal(sha256(Buffer.from(await (await fetch(getUrl)).arrayBuffer())), sha256(data))
    const tampered = putUrl.replace('presigned.bin', 'elsewhere.bin')
    assert.equal((await fetch(tampered, { method: 'PUT', body: data })).status, 403)
  })

  it('makes the object of the parts the completion names when a part was uploaded twice', async () => {
    const first = bytesOf(5 * MiB, 21)
    const again = bytesOf(5 * MiB, 22)
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'photos', Key: 'retried' }))
    const part = (PartNumber: number, Body: Buffer | string) => s3.send(new UploadPartCommand({ Bucket: 'photos', Key: 'retried', UploadId, PartNumber, Body }))
    const one = await part(1, first)
    const oneAgain = await part(1, again)
    const two = await part(2, 'end')
    const listed = await s3.send(new ListPartsCommand({ Bucket: 'photos', Key: 'retried', UploadId }))
    assert.deepEqual(
      listed.Parts?.map((p) => [p.PartNumber, p.ETag]),
      [
        [1, oneAgain.ETag],
        [2, two.ETag],
      ],
    )
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'photos',
        Key: 'retried',
        UploadId,
        MultipartUpload: {
          Parts: [
            { PartNumber: 1, ETag: one.ETag },
            { PartNumber: 2, ETag: two.ETag },
          ],
        },
      }),
    )
    assert.equal(sha256(await bodyOf(s3, 'photos', 'retried')), sha256(Buffer.concat([first, Buffer.from('end')])))
    // The unused upload of part 1 is gone; a part sent after the completion finds no upload.
    assert.equal((await failure(part(3, 'late'))).code, 'NoSuchUpload')
    await waitFor(
      'the unused part to go',
      async () =>
        ((await (await fetch(`http://${party.peer(0).api}/files?prefix=.s3/uploads/photos/${UploadId}/`)).json()) as { files: unknown[] }).files.length === 2,
      { timeoutMs: 30_000, intervalMs: 200 },
    )
  })

  it('copies a range of an object into a part, and aborts an upload', async () => {
    const source = bytesOf(6 * MiB, 8)
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'src', Body: source }))
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'photos', Key: 'assembled' }))
    const first = await s3.send(
      new UploadPartCopyCommand({
        Bucket: 'photos',
        Key: 'assembled',
        UploadId,
        PartNumber: 1,
        CopySource: 'photos/src',
        CopySourceRange: `bytes=0-${5 * MiB - 1}`,
      }),
    )
    const second = await s3.send(new UploadPartCommand({ Bucket: 'photos', Key: 'assembled', UploadId, PartNumber: 2, Body: 'tail' }))
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'photos',
        Key: 'assembled',
        UploadId,
        MultipartUpload: {
          Parts: [
            { PartNumber: 1, ETag: first.CopyPartResult?.ETag },
            { PartNumber: 2, ETag: second.ETag },
          ],
        },
      }),
    )
    assert.equal(sha256(await bodyOf(s3, 'photos', 'assembled')), sha256(Buffer.concat([source.subarray(0, 5 * MiB), Buffer.from('tail')])))
    const aborted = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'photos', Key: 'never' }))
    await s3.send(new UploadPartCommand({ Bucket: 'photos', Key: 'never', UploadId: aborted.UploadId, PartNumber: 1, Body: 'x' }))
    await s3.send(new AbortMultipartUploadCommand({ Bucket: 'photos', Key: 'never', UploadId: aborted.UploadId }))
    assert.equal(
      (await failure(s3.send(new UploadPartCommand({ Bucket: 'photos', Key: 'never', UploadId: aborted.UploadId, PartNumber: 2, Body: 'y' })))).code,
      'NoSuchUpload',
    )
    const left = (await (await fetch(`http://${party.peer(0).api}/files?prefix=.s3/uploads/photos/${aborted.UploadId}/`)).json()) as { files: unknown[] }
    assert.equal(left.files.length, 0)
  })

  it('refuses wrong secrets, unknown keys, skewed clocks and expired URLs; serves presigned ones', async () => {
    assert.equal((await failure(client(party, 0, { secret: 'wrong-secret' }).send(new ListBucketsCommand({})))).code, 'SignatureDoesNotMatch')
    assert.equal((await failure(client(party, 0, { accessKeyId: 'NOBODY0000' }).send(new ListBucketsCommand({})))).code, 'InvalidAccessKeyId')
    assert.equal((await failure(client(party, 0, { offsetMs: 20 * 60_000 }).send(new ListBucketsCommand({})))).code, 'RequestTimeTooSkewed')
    const anonymous = await fetch(`http://127.0.0.1:${party.peer(0).s3Port}/photos/ranged`)
    assert.equal(anonymous.status, 403)
    assert.match(await anonymous.text(), /<Code>AccessDenied<\/Code>/)
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'photos', Key: 'ranged' }), { expiresIn: 60 })
    assert.equal((await fetch(url)).status, 200)
    const stale = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'photos', Key: 'ranged' }), {
      expiresIn: 60,
      signingDate: new Date(Date.now() - 120_000),
    })
    const expired = await fetch(stale)
    assert.equal(expired.status, 403)
    assert.match(await expired.text(), /Request has expired/)
    assert.equal((await failure(s3.send(new GetBucketAclCommand({ Bucket: 'photos' })))).status, 501)
  })

  it('keeps a peer up through a truncated upload and malformed requests, storing nothing', async () => {
    const port = party.peer(0).s3Port
    const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'photos', Key: 'cut' }), { expiresIn: 60 })
    const path = url.slice(url.indexOf('/', 'http://'.length))
    await new Promise<void>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(`PUT ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 100000\r\n\r\n`)
        socket.write(Buffer.alloc(40_000, 1), () => socket.destroy())
      })
      socket.on('close', () => resolve())
      socket.on('error', reject)
    })
    const bad = await fetch(`http://127.0.0.1:${port}/photos?delete`, {
      method: 'POST',
      headers: { authorization: 'AWS4-HMAC-SHA256 garbage' },
      body: '<Delete><Object>',
    })
    assert.equal(bad.status, 400)
    await waitFor(
      'the cut upload to fail',
      async () =>
        (await metric(party.peer(0).api, 'houseparty_s3_requests_total', 'op="PutObject",code="IncompleteBody"')) >= 1 ||
        (await metric(party.peer(0).api, 'houseparty_s3_requests_total', 'op="PutObject",code="InternalError"')) >= 1,
      { timeoutMs: 30_000, intervalMs: 200 },
    )
    assert.equal((await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'cut' })))).status, 404)
    await s3.send(new HeadBucketCommand({ Bucket: 'photos' }))
    assert.ok((await metric(party.peer(0).api, 'houseparty_s3_requests_total', 'op="PutObject",code="OK"')) > 0)
  })
})

describe('S3 keys and their rights per bucket, managed with the CLI', () => {
  it('creates a key, gives it rights bucket by bucket, takes them back and removes it; its secret is stored sealed', async () => {
    const { party } = await newParty(3)
    await startParty(party, 3)
    const admin = client(party, 0)
    await admin.send(new CreateBucketCommand({ Bucket: 'shared' }))
    await admin.send(new PutObjectCommand({ Bucket: 'shared', Key: 'readme', Body: 'hello' }))
    const cli = async (...args: string[]): Promise<string> =>
      (await run(process.execPath, [CLI, ...args, '--peer', party.peer(1).api], { env: { PATH: process.env.PATH ?? '' } })).stdout
    const made = JSON.parse(await cli('key', 'create', 'backups', '--json')) as { accessKeyId: string; secretAccessKey: string }
    assert.match(made.accessKeyId, /^HP[A-Z2-7]{18}$/)
    const stored = await (await fetch(`http://${party.peer(2).api}/files/.s3/keys/${made.accessKeyId}`)).text()
    assert.ok(!stored.includes(made.secretAccessKey), 'the secret is not stored in clear')
    const user = client(party, 2, { accessKeyId: made.accessKeyId, secret: made.secretAccessKey })
    assert.deepEqual((await user.send(new ListBucketsCommand({}))).Buckets ?? [], [])
    assert.equal((await failure(user.send(new GetObjectCommand({ Bucket: 'shared', Key: 'readme' })))).code, 'AccessDenied')
    assert.equal((await failure(user.send(new CreateBucketCommand({ Bucket: 'mine' })))).code, 'AccessDenied')

    await cli('key', 'allow', made.accessKeyId, 'shared', '--read')
    await waitFor('the read right to reach every peer', async () => (await bodyOf(user, 'shared', 'readme').catch(() => undefined))?.toString() === 'hello', {
      timeoutMs: 30_000,
      intervalMs: 250,
    })
    // Read-only on one bucket: it cannot write it, nor read another.
    assert.deepEqual(await failure(user.send(new PutObjectCommand({ Bucket: 'shared', Key: 'x', Body: 'x' }))), { code: 'AccessDenied', status: 403 })
    await admin.send(new CreateBucketCommand({ Bucket: 'private' }))
    await admin.send(new PutObjectCommand({ Bucket: 'private', Key: 'secret', Body: 's' }))
    assert.deepEqual(await failure(user.send(new GetObjectCommand({ Bucket: 'private', Key: 'secret' }))), { code: 'AccessDenied', status: 403 })
    assert.deepEqual(await failure(user.send(new ListObjectsV2Command({ Bucket: 'private' }))), { code: 'AccessDenied', status: 403 })
    await cli('key', 'allow', made.accessKeyId, 'shared', '--write', '--create-bucket')
    await waitFor(
      'the write right',
      async () =>
        user.send(new PutObjectCommand({ Bucket: 'shared', Key: 'x', Body: 'x' })).then(
          () => true,
          () => false,
        ),
      { timeoutMs: 30_000, intervalMs: 250 },
    )
    await user.send(new CreateBucketCommand({ Bucket: 'mine' }))
    await user.send(new PutObjectCommand({ Bucket: 'mine', Key: 'a', Body: 'a' }))
    const listed = JSON.parse(await cli('key', 'ls', '--json')) as { accessKeyId: string; buckets: Record<string, string[]> }[]
    assert.deepEqual(listed.find((k) => k.accessKeyId === made.accessKeyId)?.buckets, { shared: ['read', 'write'], mine: ['read', 'write', 'owner'] })
    assert.equal((await failure(user.send(new DeleteBucketCommand({ Bucket: 'shared' })))).code, 'AccessDenied')
    await user.send(new CopyObjectCommand({ Bucket: 'mine', Key: 'b', CopySource: 'shared/readme' }))
    assert.equal((await failure(user.send(new CopyObjectCommand({ Bucket: 'mine', Key: 'c', CopySource: 'private/secret' })))).code, 'AccessDenied')

    await cli('key', 'deny', made.accessKeyId, 'shared')
    await waitFor(
      'the rights on shared to go',
      async () => (await failure(user.send(new GetObjectCommand({ Bucket: 'shared', Key: 'readme' })))).code === 'AccessDenied',
      { timeoutMs: 30_000, intervalMs: 250 },
    )
    await cli('key', 'rm', made.accessKeyId)
    await waitFor('the key to be refused', async () => (await failure(user.send(new ListBucketsCommand({})))).code === 'InvalidAccessKeyId', {
      timeoutMs: 30_000,
      intervalMs: 250,
    })
  })
})

describe('S3 objects through the loss of a peer', () => {
  it('reads a multipart object while a holder of its parts is SIGKILLed, and the parts are rebuilt to full redundancy', async () => {
    // Kills stand for lost disks here: rebuild soon after a death instead of waiting for the peer to return.
    const { party } = await newParty(4, ['--rebuild-delay-ms', '2000', '--census-interval-ms', '2000'])
    await startParty(party, 4)
    const s3 = client(party, 0)
    await s3.send(new CreateBucketCommand({ Bucket: 'survive' }))
    const parts = [bytesOf(5 * MiB, 31), bytesOf(3 * MiB + 7, 32)]
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'survive', Key: 'two-parts' }))
    const etags = await Promise.all(
      parts.map(async (Body, i) => (await s3.send(new UploadPartCommand({ Bucket: 'survive', Key: 'two-parts', UploadId, PartNumber: i + 1, Body }))).ETag),
    )
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'survive',
        Key: 'two-parts',
        UploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    )
    await s3.send(new PutObjectCommand({ Bucket: 'survive', Key: 'single', Body: bytesOf(2 * MiB, 33) }))
    const want = sha256(Buffer.concat(parts))
    party.signal(3, 'SIGKILL')
    // Degraded (k of k+m fragments of each part left): still read whole and right.
    assert.equal(sha256(await bodyOf(client(party, 1), 'survive', 'two-parts')), want)
    await waitFor(
      'every file at full redundancy on the 3 peers left',
      async () => {
        const h = await partyHealth(party.peer(0).api)
        return h.guests === 3 && h.answered === 3 && h.files > 0 && h.healthy === h.files && h.lost === 0
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    )
    assert.equal(sha256(await bodyOf(client(party, 2), 'survive', 'two-parts')), want)
    assert.equal(sha256(await bodyOf(client(party, 0), 'survive', 'single')), sha256(bytesOf(2 * MiB, 33)))
    const native = (await (await fetch(`http://${party.peer(1).api}/files?prefix=survive/`)).json()) as { files: { name: string; health: string }[] }
    assert.deepEqual(
      native.files.map((f) => [f.name, f.health]),
      [
        ['survive/single', 'ok'],
        ['survive/two-parts', 'parts'],
      ],
    )
  })
})

describe('multipart uploads left unfinished', () => {
  it('are aborted once --s3-upload-expiry-ms has passed, their parts removed', async () => {
    const { party } = await newParty(3, ['--s3-upload-expiry-ms', '3000'])
    await startParty(party, 3)
    const s3 = client(party, 0)
    await s3.send(new CreateBucketCommand({ Bucket: 'left' }))
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'left', Key: 'half' }))
    await s3.send(new UploadPartCommand({ Bucket: 'left', Key: 'half', UploadId, PartNumber: 1, Body: bytesOf(100_000, 9) }))
    await waitFor(
      'the upload to expire',
      async () =>
        s3.send(new ListPartsCommand({ Bucket: 'left', Key: 'half', UploadId })).then(
          () => false,
          (err: unknown) => err instanceof S3ServiceException && err.name === 'NoSuchUpload',
        ),
      { timeoutMs: 60_000, intervalMs: 500 },
    )
    await waitFor(
      'its part to be removed',
      async () => ((await (await fetch(`http://${party.peer(1).api}/files?prefix=.s3/uploads/`)).json()) as { files: unknown[] }).files.length === 0,
      { timeoutMs: 60_000, intervalMs: 500 },
    )
  })
})
