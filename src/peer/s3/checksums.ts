import { createHash, type Hash } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { Crc32c } from '@aws-crypto/crc32c'
import type { ObjectMeta } from '../protocol/index.ts'
import { S3Error } from './errors.ts'

export const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'sha1', 'sha256'] as const
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number]
type Checksums = NonNullable<ObjectMeta['checksums']>

interface Running {
  update(data: Uint8Array): void
  /** base64, as S3 writes checksums */
  digest(): string
}

function running(algorithm: ChecksumAlgorithm): Running {
  switch (algorithm) {
    case 'crc32': {
      let value = 0
      return {
        update: (d) => {
          value = crc32(d, value)
        },
        digest: () => uint32Base64(value),
      }
    }
    case 'crc32c': {
      const c = new Crc32c()
      return { update: (d) => void c.update(d), digest: () => uint32Base64(c.digest()) }
    }
    default: {
      const h: Hash = createHash(algorithm)
      return { update: (d) => void h.update(d), digest: () => h.digest('base64') }
    }
  }
}

function uint32Base64(value: number): string {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(value >>> 0)
  return b.toString('base64')
}

/**
 * The checksums of a body the client sent or asked for, computed as it
 * streams past; `check` compares them, and the body's MD5 (computed by the
 * file layer, off the event loop), with what the client declared, once the
 * body has ended.
 */
export class BodyDigests {
  readonly #checksums = new Map<ChecksumAlgorithm, Running>()

  constructor(algorithms: Iterable<ChecksumAlgorithm>) {
    for (const a of algorithms) this.#checksums.set(a, running(a))
  }

  /** The body as it was, the checksums updated on the way (the body itself when none is asked for). */
  pass(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    if (this.#checksums.size === 0) return body
    return this.#pass(body)
  }

  async *#pass(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const piece of body) {
      for (const c of this.#checksums.values()) c.update(piece)
      yield piece
    }
  }

  /**
   * Throws BadDigest when the body's MD5 (hex) differs from Content-MD5, or a
   * checksum from the one declared; returns the checksums computed.
   */
  check(md5Hex: string, contentMd5: string | undefined, declared: ReadonlyMap<ChecksumAlgorithm, string>): Checksums {
    if (contentMd5 !== undefined && Buffer.from(md5Hex, 'hex').toString('base64') !== contentMd5)
      throw new S3Error('BadDigest', 'the Content-MD5 you specified did not match what we received')
    const out: Checksums = {}
    for (const [algorithm, c] of this.#checksums) {
      const value = c.digest()
      const want = declared.get(algorithm)
      if (want !== undefined && want !== value)
        throw new S3Error('BadDigest', `the ${algorithm.toUpperCase()} you specified did not match the calculated checksum`)
      out[algorithm] = value
    }
    return out
  }
}

/** Content-MD5 must be the base64 of 16 bytes. */
export function checkContentMd5(value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  if (Buffer.from(value, 'base64').length !== 16) throw new S3Error('InvalidDigest', 'the Content-MD5 you specified is not valid')
  return value
}
