import assert from 'node:assert/strict'
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto'
import { describe, it } from 'node:test'
import { SignatureV4 } from '@smithy/signature-v4'
import type { HttpRequest, SourceData } from '@smithy/types'
import { S3Error } from '../../../src/peer/s3/errors.ts'
import { parseAuth, queryPairs, type RequestParts, verifySignature } from '../../../src/peer/s3/sigv4.ts'

/** The hash the SDK signer wants (sha256, keyed: HMAC), on node:crypto. */
class Sha256 {
  readonly #h: Hash | Hmac
  constructor(secret?: SourceData) {
    this.#h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret))
  }
  update(data: SourceData): void {
    this.#h.update(bytes(data))
  }
  async digest(): Promise<Uint8Array> {
    return this.#h.digest()
  }
}

function bytes(data: SourceData): string | Uint8Array {
  return typeof data === 'string' ? data : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data)
}

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
const KEY = 'AKIAIOSFODNN7EXAMPLE'
const NOW = Date.UTC(2026, 11, 6, 12, 0, 0)

const signer = (secret = SECRET, region = 'us-east-1') =>
  new SignatureV4({ credentials: { accessKeyId: KEY, secretAccessKey: secret }, region, service: 's3', sha256: Sha256, uriEscapePath: false })

/** The request as the server sees it: the path and query as sent, headers as raw pairs. */
function partsOf(req: HttpRequest): RequestParts {
  const rawQuery = Object.entries(req.query ?? {})
    .flatMap(([n, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${encodeURIComponent(n)}=${encodeURIComponent(x ?? '')}`))
    .join('&')
  return { method: req.method, rawPath: req.path, rawQuery, rawHeaders: Object.entries(req.headers).flat() }
}

function request(path: string, query: Record<string, string> = {}, headers: Record<string, string> = {}): HttpRequest {
  return {
    method: 'GET',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 7490,
    path,
    query,
    headers: { host: '127.0.0.1:7490', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...headers },
  }
}

async function verify(signed: HttpRequest, secret = SECRET, now = NOW, region = 'us-east-1') {
  const parts = partsOf(signed)
  const query = queryPairs(parts.rawQuery)
  const auth = parseAuth(parts, query)
  assert.ok(auth)
  return verifySignature(parts, query, auth, secret, region, now)
}

const code = (c: string) => (err: unknown) => err instanceof S3Error && err.code === c

describe('SigV4 verification, against the AWS SDK signer', () => {
  it('accepts a header-signed request, keys with spaces and unicode included', async () => {
    const path = `/bucket/${encodeURIComponent('dir/a file+ü.txt').replaceAll('%2F', '/')}`
    const signed = await signer().sign(request(path, { prefix: 'x y', 'list-type': '2' }, { range: 'bytes=0-9' }), { signingDate: new Date(NOW) })
    const ctx = await verify(signed as HttpRequest)
    assert.equal(ctx.amzDate, '20261206T120000Z')
  })

  it('refuses a wrong secret, a changed header, and a changed path', async () => {
    const signed = (await signer().sign(request('/bucket/key'), { signingDate: new Date(NOW) })) as HttpRequest
    await assert.rejects(() => verify(signed, 'not the secret'), code('SignatureDoesNotMatch'))
    const parts = partsOf(signed)
    const tampered = { ...parts, rawPath: '/bucket/other' }
    const auth = parseAuth(tampered, [])
    assert.ok(auth)
    assert.throws(() => verifySignature(tampered, [], auth, SECRET, 'us-east-1', NOW), code('SignatureDoesNotMatch'))
  })

  it('refuses a request signed 16 minutes away from our clock, and one for another region', async () => {
    const signed = (await signer().sign(request('/bucket/key'), { signingDate: new Date(NOW) })) as HttpRequest
    await assert.rejects(() => verify(signed, SECRET, NOW + 16 * 60_000), code('RequestTimeTooSkewed'))
    const elsewhere = (await signer(SECRET, 'eu-west-1').sign(request('/bucket/key'), { signingDate: new Date(NOW) })) as HttpRequest
    await assert.rejects(() => verify(elsewhere), code('AuthorizationHeaderMalformed'))
  })

  it('accepts a presigned URL until it expires', async () => {
    const presigned = (await signer().presign(request('/bucket/key'), { signingDate: new Date(NOW), expiresIn: 300 })) as HttpRequest
    await verify(presigned, SECRET, NOW + 299_000)
    await assert.rejects(() => verify(presigned, SECRET, NOW + 301_000), code('AccessDenied'))
  })

  it('treats a request without credentials as anonymous', () => {
    assert.equal(parseAuth({ method: 'GET', rawPath: '/', rawQuery: '', rawHeaders: ['host', 'x'] }, []), undefined)
  })

  it('refuses Signature Version 2', () => {
    const parts = { method: 'GET', rawPath: '/', rawQuery: '', rawHeaders: ['authorization', 'AWS AKID:c2lnbmF0dXJl'] }
    assert.throws(() => parseAuth(parts, []), code('InvalidRequest'))
  })
})
