import type { Server as TlsServer } from 'node:tls'
import type { FastifyInstance } from 'fastify'
import { delay, type Startable } from '../../shared/lifecycle.ts'
import type { ServingCertificate } from './tls.ts'

/** How long a stopping peer lets HTTP requests in flight finish before it exits anyway. */
export const HTTP_CLOSE_GRACE_MS = 5_000

/**
 * An HTTP server as a lifecycle component: made and bound on start (`port`
 * is then the one it got: 0 asks for any free one), closed on stop, requests
 * in flight (a get streaming a file) given a few seconds to finish. With a
 * `certificate`, it speaks HTTPS: a TLS server takes the connections and
 * hands each, once secured, to the HTTP server (which never listens itself).
 */
export function httpComponent(
  create: () => FastifyInstance,
  host: string,
  port: number,
  certificate?: ServingCertificate,
): Startable & { readonly port: number } {
  let app: FastifyInstance | undefined
  let tls: TlsServer | undefined
  let bound = 0
  return {
    get port() {
      return bound
    },
    start: async () => {
      app = create()
      if (certificate) {
        await app.ready()
        const http = app.server
        tls = certificate.server((socket) => http.emit('connection', socket))
        await new Promise<void>((resolve, reject) => {
          tls?.once('error', reject).listen(port, host, () => resolve())
        })
      } else await app.listen({ host, port })
      const addr = (tls ?? app.server).address()
      bound = typeof addr === 'object' && addr ? addr.port : port
    },
    stop: async () => {
      tls?.close()
      await Promise.race([app?.close(), delay(HTTP_CLOSE_GRACE_MS)])
    },
  }
}
