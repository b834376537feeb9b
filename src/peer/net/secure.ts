import { hkdfSync } from 'node:crypto'
import type { Socket } from 'node:net'
import { type ConnectionOptions, TLSSocket, type TLSSocketOptions } from 'node:tls'
import { HousePartyError } from '../../shared/errors.ts'

/**
 * Peer traffic on the wire. `on` (the default): datagrams sealed, data-plane
 * connections over TLS 1.3, nothing else taken. For upgrading a running
 * party from a release that spoke in clear (authenticated, unencrypted),
 * in three rolls as gossip encryption is turned on elsewhere: `clear` sends
 * as that release does and takes both; `both` sends encrypted and still
 * takes both; then `on`.
 */
export type PeerEncryption = 'on' | 'both' | 'clear'

/** Whether peers send encrypted, and whether they take traffic in clear, in each mode. */
export const sendsEncrypted = (mode: PeerEncryption): boolean => mode !== 'clear'
export const takesClear = (mode: PeerEncryption): boolean => mode !== 'on'

/**
 * TLS 1.3 between peers, keyed by the party: an external pre-shared key
 * derived from the party key (HKDF), with an ephemeral ECDHE exchange for
 * forward secrecy (OpenSSL's psk_dhe_ke). A peer without the party key
 * fails the handshake, before any request is read; no certificate to issue,
 * rotate or trust, and the party key, already in every peer's Secret, is
 * the one credential. Only SHA-256 suites: the PSK's binder hash.
 */
export class PeerTls {
  readonly #psk: Buffer

  constructor(partyKey: Buffer) {
    this.#psk = Buffer.from(hkdfSync('sha256', partyKey, Buffer.alloc(0), 'houseparty peer tls v1', 32))
  }

  /** Options for tls.connect() to a peer (no certificate: the PSK authenticates both ends). */
  clientOptions(): ConnectionOptions {
    return { ...TLS_SETTINGS, checkServerIdentity: () => undefined, pskCallback: () => ({ identity: PSK_IDENTITY, psk: this.#psk }) }
  }

  /** Runs the server side of the handshake on an accepted connection; rejects (and destroys it) if it fails or takes longer than `timeoutMs`. */
  accept(raw: Socket, timeoutMs: number): Promise<TLSSocket> {
    // The server-side pskCallback is taken by TLSSocket as by tls.createServer (its types leave it out).
    const pskCallback = (_socket: TLSSocket, identity: string): Buffer | null => (identity === PSK_IDENTITY ? this.#psk : null)
    const socket = new TLSSocket(raw, { ...TLS_SETTINGS, isServer: true, pskCallback } as TLSSocketOptions)
    socket.pause()
    return new Promise((resolve, reject) => {
      const fail = (why: string): void => {
        clearTimeout(timer)
        socket.destroy()
        raw.destroy()
        reject(new HousePartyError('ERR_UNAUTHORIZED', `TLS handshake failed: ${why}`))
      }
      const timer = setTimeout(() => fail(`not done within ${timeoutMs} ms`), timeoutMs)
      socket.once('secure', () => {
        clearTimeout(timer)
        resolve(socket)
      })
      socket.once('error', (err) => fail(err.message))
      socket.once('close', () => fail('closed'))
    })
  }
}

const PSK_IDENTITY = 'houseparty'
const TLS_SETTINGS = { minVersion: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256' } as const

/** The first byte of every TLS connection (a handshake record). */
export const TLS_HANDSHAKE_BYTE = 0x16

/**
 * The first byte a paused, accepted connection sends, left unread for
 * whoever reads it next (undefined: it closed or sent nothing within
 * `timeoutMs`). The socket is paused again.
 */
export function firstByte(socket: Socket, timeoutMs: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const done = (value: number | undefined): void => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('close', onClose)
      resolve(value)
    }
    const onData = (chunk: Buffer): void => {
      socket.pause()
      socket.unshift(chunk)
      done(chunk[0])
    }
    const onClose = (): void => done(undefined)
    const timer = setTimeout(() => done(undefined), timeoutMs)
    socket.on('data', onData)
    socket.once('close', onClose)
    socket.resume()
  })
}
