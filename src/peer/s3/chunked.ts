import { createHash } from 'node:crypto'
import { S3Error } from './errors.ts'
import { chunkSignature, EMPTY_SHA256, type SigningContext, sameHex, trailerSignature } from './sigv4.ts'

/**
 * The aws-chunked body encodings SDKs send (`Content-Encoding: aws-chunked`):
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]: `hex-size;chunk-signature=SIG\r\n DATA \r\n` …, each chunk
 *     signed over the previous signature, ending with a signed empty chunk (then signed trailers);
 *   STREAMING-UNSIGNED-PAYLOAD-TRAILER: `hex-size\r\n DATA \r\n` …, `0\r\n`, then trailers such as
 *     `x-amz-checksum-crc32:…`.
 * Data is passed on as it arrives and each chunk's signature checked at its
 * end: a bad signature fails the body before the put is recorded, so nothing
 * unsigned is ever stored as an object.
 */
export interface ChunkedOptions {
  /** Signed chunks: the request's signing context (the seed is the request's own signature). */
  signing?: SigningContext
  trailers: boolean
  /** x-amz-decoded-content-length, when sent: the decoded size must match. */
  decodedLength?: number
}

/** Longest chunk header or trailer line accepted (a hex size and a 64-digit signature fit many times over). */
const MAX_LINE = 4096
/** Largest single chunk accepted: SDKs send 64 KiB to 8 MiB chunks. */
const MAX_CHUNK = 64 * 1024 * 1024

export interface DecodedBody {
  body: AsyncGenerator<Buffer>
  /** The trailing headers (lowercase names), complete once body is done. */
  trailers: Map<string, string>
}

export function decodeChunked(input: AsyncIterable<Uint8Array>, options: ChunkedOptions): DecodedBody {
  const trailers = new Map<string, string>()
  return { body: decode(input, options, trailers), trailers }
}

async function* decode(input: AsyncIterable<Uint8Array>, options: ChunkedOptions, trailers: Map<string, string>): AsyncGenerator<Buffer> {
  const reader = new ByteReader(input)
  const { signing } = options
  let previous = signing?.seedSignature ?? ''
  let decoded = 0
  for (;;) {
    const header = await reader.line()
    const [sizeText, ...extensions] = header.split(';')
    if (!sizeText || !/^[0-9a-fA-F]{1,8}$/.test(sizeText)) throw malformed(`bad chunk size ${JSON.stringify(header.slice(0, 40))}`)
    const size = Number.parseInt(sizeText, 16)
    if (size > MAX_CHUNK) throw malformed(`a chunk of ${size} bytes is larger than ${MAX_CHUNK}`)
    const given = extensions.find((e) => e.startsWith('chunk-signature='))?.slice('chunk-signature='.length)
    if (signing && given === undefined) throw new S3Error('SignatureDoesNotMatch', 'a chunk of a signed streaming body has no chunk-signature')
    const hash = signing ? createHash('sha256') : undefined
    for (let left = size; left > 0; ) {
      const piece = await reader.take(left)
      hash?.update(piece)
      left -= piece.length
      decoded += piece.length
      yield piece
    }
    if (signing && given !== undefined) {
      const expected = chunkSignature(signing, previous, size === 0 ? EMPTY_SHA256 : (hash?.digest('hex') ?? ''))
      if (!sameHex(expected, given)) throw new S3Error('SignatureDoesNotMatch', 'a chunk signature does not match')
      previous = expected
    }
    if (size === 0) break
    if ((await reader.line()) !== '') throw malformed('a chunk does not end with CRLF')
  }
  if (options.trailers) await readTrailers(reader, trailers, signing, previous)
  else await reader.line().catch(() => '')
  if (options.decodedLength !== undefined && decoded !== options.decodedLength)
    throw new S3Error('IncompleteBody', `the body decoded to ${decoded} bytes; x-amz-decoded-content-length says ${options.decodedLength}`)
}

async function readTrailers(reader: ByteReader, trailers: Map<string, string>, signing: SigningContext | undefined, previous: string): Promise<void> {
  let canonical = ''
  let signature: string | undefined
  for (;;) {
    const line = await reader.line().catch(() => '')
    if (line === '') break
    const colon = line.indexOf(':')
    if (colon <= 0) throw malformed(`bad trailer line ${JSON.stringify(line.slice(0, 60))}`)
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    if (name === 'x-amz-trailer-signature') signature = value
    else {
      trailers.set(name, value)
      canonical += `${name}:${value}\n`
    }
  }
  if (signing) {
    if (signature === undefined) throw new S3Error('SignatureDoesNotMatch', 'the signed trailers carry no x-amz-trailer-signature')
    if (!sameHex(trailerSignature(signing, previous, canonical), signature)) throw new S3Error('SignatureDoesNotMatch', 'the trailer signature does not match')
  }
}

function malformed(why: string): S3Error {
  return new S3Error('IncompleteBody', `malformed aws-chunked body: ${why}`)
}

/** Reads lines and byte runs off an async byte stream, holding at most one incoming piece. */
class ByteReader {
  readonly #input: AsyncIterator<Uint8Array>
  #buffer: Buffer = Buffer.alloc(0)

  constructor(input: AsyncIterable<Uint8Array>) {
    this.#input = input[Symbol.asyncIterator]()
  }

  async #more(): Promise<boolean> {
    const next = await this.#input.next()
    if (next.done) return false
    // A view, not a copy: only the rare line split across two pieces is joined.
    const piece = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength)
    this.#buffer = this.#buffer.length === 0 ? piece : Buffer.concat([this.#buffer, piece])
    return true
  }

  /** The next line without its CRLF. */
  async line(): Promise<string> {
    for (;;) {
      const end = this.#buffer.indexOf('\r\n')
      if (end >= 0) {
        const text = this.#buffer.subarray(0, end).toString('latin1')
        this.#buffer = this.#buffer.subarray(end + 2)
        return text
      }
      if (this.#buffer.length > MAX_LINE) throw malformed('a line is too long')
      if (!(await this.#more())) throw malformed('the body ended mid-line')
    }
  }

  /** Up to `n` bytes (at least one). */
  async take(n: number): Promise<Buffer> {
    if (this.#buffer.length === 0 && !(await this.#more())) throw malformed('the body ended mid-chunk')
    const piece = this.#buffer.subarray(0, n)
    this.#buffer = this.#buffer.subarray(piece.length)
    return piece
  }
}
