import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { crc32 } from 'node:zlib'
import { decodeChunked } from '../../../src/peer/s3/chunked.ts'
import { S3Error } from '../../../src/peer/s3/errors.ts'
import { parseAuth, type RequestParts, verifySignature } from '../../../src/peer/s3/sigv4.ts'

/**
 * AWS's published example of a signed streaming upload ("Transferring payload in multiple chunks"):
 * 66,560 bytes of "a" in a 65,536-byte chunk and a 1,024-byte one, with the seed and chunk signatures
 * AWS lists for it. Our verifier must accept exactly those.
 */
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
const SEED = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9'
const CHUNK_SIGNATURES = [
  'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
  '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
  'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9',
]
const SIGNED_AT = Date.UTC(2013, 4, 24)

function exampleRequest(): RequestParts {
  const headers: [string, string][] = [
    ['Host', 's3.amazonaws.com'],
    ['x-amz-date', '20130524T000000Z'],
    ['x-amz-storage-class', 'REDUCED_REDUNDANCY'],
    [
      'Authorization',
      `AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=${SEED}`,
    ],
    ['x-amz-content-sha256', 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD'],
    ['Content-Encoding', 'aws-chunked'],
    ['x-amz-decoded-content-length', '66560'],
    ['Content-Length', '66824'],
  ]
  return { method: 'PUT', rawPath: '/examplebucket/chunkObject.txt', rawQuery: '', rawHeaders: headers.flat() }
}

function exampleBody(signatures = CHUNK_SIGNATURES, sizes = [65536, 1024]): Buffer {
  const pieces: Buffer[] = []
  for (const [i, size] of [...sizes, 0].entries()) {
    pieces.push(Buffer.from(`${size.toString(16)};chunk-signature=${signatures[i]}\r\n`), Buffer.alloc(size, 'a'), Buffer.from('\r\n'))
  }
  return Buffer.concat(pieces)
}

async function* inPieces(body: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < body.length; at += size) yield body.subarray(at, at + size)
}

async function drain(body: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0
  for await (const piece of body) n += piece.length
  return n
}

function signing() {
  const parts = exampleRequest()
  const auth = parseAuth(parts, [])
  assert.ok(auth)
  return verifySignature(parts, [], auth, SECRET, 'us-east-1', SIGNED_AT)
}

const code = (c: string) => (err: unknown) => err instanceof S3Error && err.code === c

describe('aws-chunked bodies', () => {
  it("accepts AWS's own signed example, however the bytes are split", async () => {
    for (const split of [1, 7, 4096, 100_000]) {
      const { body } = decodeChunked(inPieces(exampleBody(), split), { signing: signing(), trailers: false, decodedLength: 66560 })
      assert.equal(await drain(body), 66560)
    }
  })

  it('fails a chunk whose data or signature was changed', async () => {
    const changed = exampleBody()
    changed[100] = 'b'.charCodeAt(0)
    await assert.rejects(drain(decodeChunked(inPieces(changed, 4096), { signing: signing(), trailers: false }).body), code('SignatureDoesNotMatch'))
    const reordered = exampleBody([CHUNK_SIGNATURES[1] as string, CHUNK_SIGNATURES[0] as string, CHUNK_SIGNATURES[2] as string])
    await assert.rejects(drain(decodeChunked(inPieces(reordered, 4096), { signing: signing(), trailers: false }).body), code('SignatureDoesNotMatch'))
  })

  it('fails a body cut short, and one whose decoded length differs from what was declared', async () => {
    const whole = exampleBody()
    await assert.rejects(drain(decodeChunked(inPieces(whole.subarray(0, 60_000), 4096), { signing: signing(), trailers: false }).body), code('IncompleteBody'))
    await assert.rejects(
      drain(decodeChunked(inPieces(whole, 4096), { signing: signing(), trailers: false, decodedLength: 66561 }).body),
      code('IncompleteBody'),
    )
  })

  it('reads the trailers of an unsigned streaming body', async () => {
    const data = Buffer.from('hello, trailers')
    const checksum = Buffer.alloc(4)
    checksum.writeUInt32BE(crc32(data))
    const wire = Buffer.concat([
      Buffer.from(`${data.length.toString(16)}\r\n`),
      data,
      Buffer.from(`\r\n0\r\nx-amz-checksum-crc32:${checksum.toString('base64')}\r\n\r\n`),
    ])
    const decoded = decodeChunked(inPieces(wire, 3), { trailers: true })
    assert.equal(await drain(decoded.body), data.length)
    assert.equal(decoded.trailers.get('x-amz-checksum-crc32'), checksum.toString('base64'))
  })

  it('refuses a malformed chunk header', async () => {
    const wire = Buffer.from('zz\r\nabc\r\n0\r\n\r\n')
    await assert.rejects(drain(decodeChunked(inPieces(wire, 64), { trailers: false }).body), code('IncompleteBody'))
  })
})
