import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { HousePartyError } from '../../shared/errors.ts'

/** A secret as stored: AES-256-GCM under a key derived from the party key (base64 fields). */
export interface SealedSecret {
  iv: string
  tag: string
  data: string
}

/**
 * Secrets of S3 keys are kept in the party (as files every guest can read),
 * so they are encrypted under a key only the party's members have: HKDF of
 * the party key. The access key ID is bound in as associated data, so a
 * sealed secret copied onto another key's record does not open.
 */
export class SecretSealer {
  readonly #key: Buffer

  constructor(partyKey: Buffer) {
    this.#key = Buffer.from(hkdfSync('sha256', partyKey, 'houseparty', 's3 key secrets', 32))
  }

  seal(accessKeyId: string, secret: string): SealedSecret {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv)
    cipher.setAAD(Buffer.from(accessKeyId))
    const data = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()])
    return { iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') }
  }

  open(accessKeyId: string, sealed: SealedSecret): string {
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(sealed.iv, 'base64'))
      decipher.setAAD(Buffer.from(accessKeyId))
      decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'))
      return Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]).toString('utf8')
    } catch {
      throw new HousePartyError('ERR_INTERNAL', `the secret of S3 key ${accessKeyId} does not open under this party key`)
    }
  }
}
