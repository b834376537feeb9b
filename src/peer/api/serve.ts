import type { FastifyInstance } from 'fastify'
import { delay, type Startable } from '../../shared/lifecycle.ts'

/** How long a stopping peer lets HTTP requests in flight finish before it exits anyway. */
export const HTTP_CLOSE_GRACE_MS = 5_000

/**
 * An HTTP server as a lifecycle component: made and bound on start (`port`
 * is then the one it got: 0 asks for any free one), closed on stop, requests
 * in flight (a get streaming a file) given a few seconds to finish.
 */
export function httpComponent(create: () => FastifyInstance, host: string, port: number): Startable & { readonly port: number } {
  let app: FastifyInstance | undefined
  let bound = 0
  return {
    get port() {
      return bound
    },
    start: async () => {
      app = create()
      await app.listen({ host, port })
      const addr = app.server.address()
      bound = typeof addr === 'object' && addr ? addr.port : port
    },
    stop: async () => {
      await Promise.race([app?.close(), delay(HTTP_CLOSE_GRACE_MS)])
    },
  }
}
