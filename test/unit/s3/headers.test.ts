import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { FileRecord } from '../../../src/peer/protocol/index.ts'
import { S3Error } from '../../../src/peer/s3/errors.ts'
import { evaluateConditions, parseRange, userMeta } from '../../../src/peer/s3/headers.ts'
import { checkBucketName, fileOf } from '../../../src/peer/s3/names.ts'

const code = (c: string) => (err: unknown) => err instanceof S3Error && err.code === c

describe('S3 request headers', () => {
  it('reads a single byte range as S3 does, and refuses one past the end', () => {
    assert.deepEqual(parseRange('bytes=0-9', 100), [0, 9])
    assert.deepEqual(parseRange('bytes=90-', 100), [90, 99])
    assert.deepEqual(parseRange('bytes=-10', 100), [90, 99])
    assert.deepEqual(parseRange('bytes=-1000', 100), [0, 99])
    assert.deepEqual(parseRange('bytes=50-1000', 100), [50, 99])
    assert.equal(parseRange(undefined, 100), undefined)
    // Several ranges, another unit, or a backwards range: the whole object (RFC 9110 lets a server ignore Range).
    assert.equal(parseRange('bytes=0-1,5-6', 100), undefined)
    assert.equal(parseRange('items=0-1', 100), undefined)
    assert.equal(parseRange('bytes=9-2', 100), undefined)
    assert.throws(() => parseRange('bytes=100-', 100), code('InvalidRange'))
    assert.throws(() => parseRange('bytes=-0', 100), code('InvalidRange'))
    assert.throws(() => parseRange('bytes=0-', 0), code('InvalidRange'))
  })

  it('evaluates conditional reads in RFC 9110 order, on whole seconds', () => {
    const record = { hash: 'a'.repeat(64), created: Date.UTC(2026, 0, 1, 12, 0, 0, 700), meta: { etag: 'b'.repeat(32) } } as FileRecord
    const etag = `"${'b'.repeat(32)}"`
    const at = (ms: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, 0) + ms).toUTCString()
    const ask = (headers: Record<string, string>, prefix = '') => evaluateConditions((h) => headers[h], record, prefix)
    assert.equal(ask({}), 'ok')
    assert.equal(ask({ 'if-match': etag }), 'ok')
    assert.equal(ask({ 'if-match': '"other", *' }), 'ok')
    assert.equal(ask({ 'if-match': '"other"' }), 'failed')
    assert.equal(ask({ 'if-none-match': etag }), 'not-modified')
    assert.equal(ask({ 'if-modified-since': at(0) }), 'not-modified', 'modified in the same second as the date: not modified since')
    assert.equal(ask({ 'if-modified-since': at(-1000) }), 'ok')
    assert.equal(ask({ 'if-unmodified-since': at(-1000) }), 'failed')
    // If-Match that holds makes If-Unmodified-Since moot; If-None-Match that fails makes If-Modified-Since moot.
    assert.equal(ask({ 'if-match': etag, 'if-unmodified-since': at(-1000) }), 'ok')
    assert.equal(ask({ 'if-none-match': '"other"', 'if-modified-since': at(0) }), 'ok')
    assert.equal(ask({ 'x-amz-copy-source-if-match': '"other"' }, 'x-amz-copy-source-'), 'failed')
    assert.equal(ask({ 'if-modified-since': 'not a date' }), 'ok')
  })

  it("keeps user metadata under S3's 2 KB", () => {
    assert.deepEqual(userMeta({ 'x-amz-meta-a': '1', 'content-type': 'x' }), { a: '1' })
    assert.equal(userMeta({}), undefined)
    assert.throws(() => userMeta({ 'x-amz-meta-big': 'x'.repeat(2100) }), code('MetadataTooLarge'))
  })
})

describe('S3 names', () => {
  it("takes S3's rules for bucket names", () => {
    for (const ok of ['abc', 'my-bucket.2026', 'a'.repeat(63)]) assert.equal(checkBucketName(ok), ok)
    for (const bad of ['ab', 'a'.repeat(64), 'Upper', 'under_score', '-start', 'end-', 'two..dots', '192.168.1.1', '.s3']) {
      assert.throws(() => checkBucketName(bad), code('InvalidBucketName'), bad)
    }
  })

  it('maps a key to the file BUCKET/KEY, refusing keys the native names cannot hold', () => {
    assert.equal(fileOf('photos', 'a/b c.jpg'), 'photos/a/b c.jpg')
    for (const bad of ['a//b', 'dir/', '../x', 'a/./b', 'back\\slash', 'nul\u0000']) assert.throws(() => fileOf('photos', bad), code('InvalidArgument'), bad)
    assert.throws(() => fileOf('photos', 'k'.repeat(1100)), code('KeyTooLongError'))
    assert.throws(() => fileOf('photos', ''), code('InvalidArgument'))
  })
})
