import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { HousePartyError } from '../../shared/errors.ts'
import type { Logger } from '../../shared/logger.ts'
import { syncDir } from './layout.ts'

const CIPHER = 'aes-256-gcm'
const TAG_BYTES = 16
const SALT_BYTES = 16
const IV_BYTES = 12
/** Where the volume's data key is kept, wrapped. */
const DATA_KEY_FILE = 'at-rest-key.json'
const WRAP_AAD = Buffer.from('houseparty at-rest data key v1')

interface WrappedKey {
  /** Which key-encryption key wrapped it: the first 16 hex digits of its sha256. */
  kek: string
  /** iv ‖ ciphertext ‖ tag, base64. */
  wrapped: string
}

/** A key-encryption key: derived from a line of the key file, named by a hash of itself. */
interface Kek {
  id: string
  key: Buffer
}

function kekOf(line: string): Kek {
  const key = Buffer.from(hkdfSync('sha256', Buffer.from(line, 'utf8'), Buffer.alloc(0), 'houseparty at-rest key-encryption key', 32))
  return { id: createHash('sha256').update(key).digest('hex').slice(0, 16), key }
}

function wrap(kek: Kek, dataKey: Buffer): WrappedKey {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv(CIPHER, kek.key, iv).setAAD(WRAP_AAD)
  const body = Buffer.concat([cipher.update(dataKey), cipher.final()])
  return { kek: kek.id, wrapped: Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64') }
}

function unwrap(kek: Kek, w: WrappedKey): Buffer {
  const raw = Buffer.from(w.wrapped, 'base64')
  const decipher = createDecipheriv(CIPHER, kek.key, raw.subarray(0, IV_BYTES)).setAAD(WRAP_AAD)
  decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES))
  try {
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()])
  } catch {
    throw new HousePartyError('ERR_INVALID_CONFIG', `the data key in ${DATA_KEY_FILE} does not unwrap with key ${w.kek}: the file is damaged`)
  }
}

/**
 * Envelope encryption of one volume's fragments. A random data key, made
 * once per volume, encrypts every fragment; it is kept in
 * <data>/at-rest-key.json wrapped (AES-256-GCM) by a key-encryption key
 * from --at-rest-key-file, so a stolen volume without the Secret is
 * ciphertext, and rotating the Secret re-wraps 32 bytes instead of
 * rewriting the data. Each fragment gets a key of its own (HKDF of the
 * data key and a random salt kept in its row) and each chunk is sealed
 * with AES-256-GCM under the chunk's index as nonce and the fragment's key
 * as associated data: a chunk moved to another place, or into another
 * fragment, fails its tag. Tags and salt live in the fragment's row, so the
 * ciphertext has the plaintext's length and every offset stays as it was.
 */
export class AtRestKey {
  readonly #dataKey: Buffer

  private constructor(dataKey: Buffer) {
    this.#dataKey = dataKey
  }

  /**
   * The volume's data key, unwrapped with a line of `keyFile` (made and
   * wrapped on first use); re-wrapped under the first line when another
   * line unwrapped it. Undefined without a key file, unless the volume has
   * a data key: then its fragments cannot be read, and the peer must not start.
   */
  static async open(dataDir: string, keyFile: string, log: Logger): Promise<AtRestKey | undefined> {
    const path = join(dataDir, DATA_KEY_FILE)
    const stored = existsSync(path) ? (JSON.parse(await readFile(path, 'utf8')) as WrappedKey) : undefined
    if (keyFile === '') {
      if (!stored) return undefined
      throw new HousePartyError(
        'ERR_INVALID_CONFIG',
        `this volume's fragments are encrypted at rest (${path}, key ${stored.kek}): start the peer with --at-rest-key-file`,
      )
    }
    const keks = (await readKeyFile(keyFile)).map(kekOf)
    const current = keks[0] as Kek
    if (!stored) {
      const dataKey = randomBytes(32)
      await writeWrapped(dataDir, wrap(current, dataKey))
      log.info({ kek: current.id }, 'encryption at rest: a new data key for this volume')
      return new AtRestKey(dataKey)
    }
    const kek = keks.find((k) => k.id === stored.kek)
    if (!kek) {
      throw new HousePartyError(
        'ERR_INVALID_CONFIG',
        `no key in ${keyFile} unwraps this volume's data key (wrapped by key ${stored.kek}; the file has ${keks.map((k) => k.id).join(', ')}): when rotating, keep the old key as a later line until every peer has restarted`,
      )
    }
    const dataKey = unwrap(kek, stored)
    if (kek !== current) {
      await writeWrapped(dataDir, wrap(current, dataKey))
      log.info({ from: kek.id, to: current.id }, 'encryption at rest: data key re-wrapped under the first key (no fragment rewritten)')
    }
    return new AtRestKey(dataKey)
  }

  /** A sealer for a new fragment (a fresh salt, so a fragment written again gets a key of its own). */
  sealer(fragmentKey: string): ChunkSealer {
    return new ChunkSealer(this.#fragmentKey(randomBytes(SALT_BYTES)), fragmentKey)
  }

  /** An opener for a stored fragment, from the seal its row keeps. */
  opener(fragmentKey: string, seal: Buffer): ChunkOpener {
    return new ChunkOpener(this.#fragmentKey(seal.subarray(0, SALT_BYTES)), fragmentKey, seal)
  }

  #fragmentKey(salt: Buffer): { salt: Buffer; key: Buffer } {
    return { salt, key: Buffer.from(hkdfSync('sha256', this.#dataKey, salt, 'houseparty fragment key', 32)) }
  }
}

async function readKeyFile(keyFile: string): Promise<string[]> {
  let text: string
  try {
    text = await readFile(keyFile, 'utf8')
  } catch (err) {
    throw new HousePartyError('ERR_INVALID_CONFIG', `cannot read --at-rest-key-file ${keyFile}: ${(err as Error).message}`)
  }
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
  if (lines.length === 0 || lines.some((l) => Buffer.byteLength(l) < 32))
    throw new HousePartyError('ERR_INVALID_CONFIG', `--at-rest-key-file ${keyFile} must hold one or more keys of at least 32 characters, one per line`)
  return lines
}

async function writeWrapped(dataDir: string, w: WrappedKey): Promise<void> {
  const path = join(dataDir, DATA_KEY_FILE)
  await writeFile(`${path}.tmp`, `${JSON.stringify(w)}\n`, { mode: 0o600, flush: true })
  await rename(`${path}.tmp`, path)
  await syncDir(dataDir)
}

const nonce = (chunk: number): Buffer => {
  const iv = Buffer.alloc(IV_BYTES)
  iv.writeUInt32BE(chunk, IV_BYTES - 4)
  return iv
}

/** Seals the chunks of one fragment being written, in any order; `seal()` is what its row keeps. */
export class ChunkSealer {
  readonly #key: { salt: Buffer; key: Buffer }
  readonly #aad: Buffer
  readonly #tags: Buffer[] = []

  constructor(key: { salt: Buffer; key: Buffer }, fragmentKey: string) {
    this.#key = key
    this.#aad = Buffer.from(fragmentKey)
  }

  /** Chunk `chunk` encrypted (a new buffer of the same length). */
  sealChunk(chunk: number, data: Buffer): Buffer {
    const cipher = createCipheriv(CIPHER, this.#key.key, nonce(chunk)).setAAD(this.#aad)
    // GCM is a stream mode: update() returns every byte, final() none (it computes the tag).
    const out = cipher.update(data)
    cipher.final()
    this.#tags[chunk] = cipher.getAuthTag()
    return out
  }

  /** Salt ‖ one tag per chunk. */
  seal(): Buffer {
    return Buffer.concat([this.#key.salt, ...this.#tags])
  }
}

/** Opens the chunks of one stored fragment, each checked against its tag. */
export class ChunkOpener {
  readonly #key: Buffer
  readonly #aad: Buffer
  readonly #seal: Buffer

  constructor(key: { key: Buffer }, fragmentKey: string, seal: Buffer) {
    this.#key = key.key
    this.#aad = Buffer.from(fragmentKey)
    this.#seal = seal
  }

  /** Decrypts chunk `chunk` in place; false when it fails its tag (damaged, moved, or of another fragment). */
  openChunk(chunk: number, data: Buffer): boolean {
    const at = SALT_BYTES + chunk * TAG_BYTES
    if (this.#seal.length < at + TAG_BYTES) return false
    const decipher = createDecipheriv(CIPHER, this.#key, nonce(chunk)).setAAD(this.#aad)
    decipher.setAuthTag(this.#seal.subarray(at, at + TAG_BYTES))
    try {
      const plain = decipher.update(data)
      decipher.final()
      plain.copy(data)
      return true
    } catch {
      return false
    }
  }
}
