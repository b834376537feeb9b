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
 *
 * Both ends offer the ALPN protocol FRAMES_IN_TLS: where both do, frames
 * carry no HMAC of their own (see `framesNeedMac`). A peer of an earlier
 * release offers nothing, and its frames keep their HMAC both ways.
 */
export class PeerTls {
  readonly #psk: Buffer
  readonly #alpn: string[] | undefined

  /** `macFrames`: offer nothing, as a peer of an earlier release does (its frames keep their HMAC inside TLS). */
  constructor(partyKey: Buffer, options: { macFrames?: boolean } = {}) {
    this.#psk = Buffer.from(hkdfSync('sha256', partyKey, Buffer.alloc(0), 'houseparty peer tls v1', 32))
    this.#alpn = options.macFrames ? undefined : [FRAMES_IN_TLS]
  }

  /** Options for tls.connect() to a peer (no certificate: the PSK authenticates both ends). */
  clientOptions(): ConnectionOptions {
    return {
      ...TLS_SETTINGS,
      ...(this.#alpn ? { ALPNProtocols: this.#alpn } : {}),
      checkServerIdentity: () => undefined,
      pskCallback: () => ({ identity: PSK_IDENTITY, psk: this.#psk }),
    }
  }

  /** Runs the server side of the handshake on an accepted connection; rejects (and destroys it) if it fails or takes longer than `timeoutMs`. */
  accept(raw: Socket, timeoutMs: number): Promise<TLSSocket> {
    // The server-side pskCallback is taken by TLSSocket as by tls.createServer (its types leave it out).
    const pskCallback = (_socket: TLSSocket, identity: string): Buffer | null => (identity === PSK_IDENTITY ? this.#psk : null)
    // A client that offers no ALPN (an earlier release) is still served: OpenSSL selects nothing, and its frames keep their HMAC.
    const socket = new TLSSocket(raw, {
      ...TLS_SETTINGS,
      ...(this.#alpn ? { ALPNProtocols: this.#alpn } : {}),
      isServer: true,
      pskCallback,
    } as TLSSocketOptions)
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

/**
 * The ALPN protocol both ends of a peer connection offer when their frames
 * go without an HMAC: TLS keyed by the party already authenticates every
 * byte and keeps a connection's frames from being replayed, reordered or
 * moved to another connection, which is what the HMAC, its nonce and the
 * replay window do on a connection in clear. Without them a call on a kept
 * connection costs both ends 28.5 µs of CPU instead of 47.6 (BENCHMARKS.md).
 */
export const FRAMES_IN_TLS = 'houseparty-frames/2'

/** Whether frames on `socket` carry their own HMAC: yes unless both ends agreed on FRAMES_IN_TLS. */
export function framesNeedMac(socket: Socket): boolean {
  return !(socket instanceof TLSSocket && socket.alpnProtocol === FRAMES_IN_TLS)
}
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
