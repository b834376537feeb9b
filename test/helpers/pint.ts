import { PeerTls, PintServer, type PintServerOptions } from '../../src/peer/net/index.ts'
import { systemClock } from '../../src/shared/clock.ts'
import { silentLogger } from '../../src/shared/logger.ts'

/** The party key the tests' servers and callers share. */
export const testKey = Buffer.from('a party key of some length')

/** A data-plane server with the test key, the system clock and no logs, taking TLS and (unless told otherwise) plain connections; `options` names what a test cares about. */
export function testPintServer(options: Pick<PintServerOptions, 'handler'> & Partial<PintServerOptions>): PintServer {
  return new PintServer({
    key: testKey,
    tls: new PeerTls(testKey),
    plain: true,
    handshakeTimeoutMs: 5000,
    clock: systemClock,
    logger: silentLogger(),
    idleTimeoutMs: 5000,
    onReject: () => undefined,
    ...options,
  })
}
