import { X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createSecureContext, createServer, type Server, type TLSSocket } from 'node:tls'
import { HousePartyError } from '../../shared/errors.ts'
import type { Startable } from '../../shared/lifecycle.ts'
import type { Logger } from '../../shared/logger.ts'

/** How often the certificate files are read again: cert-manager (or a hand) may replace them at any time. */
const RELOAD_MS = 5_000
/** A client gets this long to finish its TLS handshake: one that holds it open is cut (a slowloris holds nothing for long). */
const HANDSHAKE_TIMEOUT_MS = 10_000

interface Pem {
  cert: string
  key: string
}

/**
 * The certificate the HTTP API and the S3 endpoint serve, from two PEM files
 * (a Kubernetes TLS Secret mounted as a volume: tls.crt, tls.key), read
 * again every few seconds: a changed pair that loads is served to every new
 * connection at once (setSecureContext), connections under way keep theirs.
 * A pair that does not load (half written, or a key that is not the
 * certificate's) is logged and the last good one kept; at start it is a
 * configuration error.
 */
export class ServingCertificate implements Startable {
  readonly #files: { certFile: string; keyFile: string }
  readonly #log: Logger
  readonly #servers = new Set<Server>()
  #current: Pem | undefined
  #timer: NodeJS.Timeout | undefined

  constructor(files: { certFile: string; keyFile: string }, log: Logger) {
    this.#files = files
    this.#log = log
  }

  async start(): Promise<void> {
    const pem = await this.#read().catch((err: Error) => {
      throw new HousePartyError('ERR_INVALID_CONFIG', `cannot serve TLS with ${this.#files.certFile} and ${this.#files.keyFile}: ${err.message}`)
    })
    this.#use(pem)
    this.#timer = setInterval(() => void this.#reload(), RELOAD_MS)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
  }

  /** A TLS server with the current certificate (and every one after), handing each secured connection to `serve`. */
  server(serve: (socket: TLSSocket) => void): Server {
    const server = createServer({ ...(this.#current as Pem), handshakeTimeout: HANDSHAKE_TIMEOUT_MS, minVersion: 'TLSv1.2' }, serve)
    // A client that fails or abandons its handshake is cut (Node reports a handshake timeout but leaves the socket open).
    server.on('tlsClientError', (err, socket) => {
      socket.destroy()
      this.#log.debug({ err: err.message }, 'TLS handshake failed')
    })
    this.#servers.add(server)
    server.once('close', () => this.#servers.delete(server))
    return server
  }

  async #read(): Promise<Pem> {
    const [cert, key] = await Promise.all([readFile(this.#files.certFile, 'utf8'), readFile(this.#files.keyFile, 'utf8')])
    // Throws when the key is not the certificate's, or either is not PEM.
    createSecureContext({ cert, key })
    return { cert, key }
  }

  async #reload(): Promise<void> {
    let pem: Pem
    try {
      pem = await this.#read()
    } catch (err) {
      this.#log.warn({ err: (err as Error).message, cert: this.#files.certFile }, 'TLS certificate files do not load; still serving the last good ones')
      return
    }
    if (pem.cert === this.#current?.cert && pem.key === this.#current.key) return
    this.#use(pem)
  }

  #use(pem: Pem): void {
    const first = this.#current === undefined
    this.#current = pem
    for (const server of this.#servers) server.setSecureContext(pem)
    const x509 = new X509Certificate(pem.cert)
    this.#log.info({ subject: x509.subject, validTo: x509.validTo, fingerprint: x509.fingerprint256 }, first ? 'serving TLS' : 'TLS certificate reloaded')
  }
}
