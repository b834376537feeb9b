import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { type Clock, systemClock } from '../shared/clock.ts'
import type { PeerConfig } from '../shared/config.ts'
import type { Logger } from '../shared/logger.ts'
import { createApi } from './api/index.ts'
import { primaryAddress, resolveDoors } from './doors.ts'
import { FailureDetector, Membership } from './membership/index.ts'
import { createPeerMetrics, type PeerMetrics } from './metrics/index.ts'
import { type DatagramTransport, joinAddress, Messenger, UdpTransport } from './net/index.ts'
import { GuestId } from './protocol/index.ts'

export interface PeerDeps {
  clock?: Clock
  transport?: DatagramTransport
}

const INSECURE_KEY = Buffer.alloc(0)

/**
 * One guest of the party: wires the layers together and starts them in
 * order (network, membership, detection, API); stops them in reverse.
 */
export class Peer {
  readonly config: PeerConfig
  readonly log: Logger
  readonly metrics: PeerMetrics
  readonly membership: Membership
  readonly detector: FailureDetector
  readonly #transport: DatagramTransport
  readonly #advertiseHost: string
  #api: FastifyInstance | undefined
  #apiPort = 0

  constructor(config: PeerConfig, logger: Logger, deps: PeerDeps = {}) {
    this.config = config
    this.log = logger
    const clock = deps.clock ?? systemClock
    this.metrics = createPeerMetrics()
    this.#advertiseHost = config.advertiseHost || (config.host === '0.0.0.0' || config.host === '::' ? primaryAddress() : config.host)
    this.#transport = deps.transport ?? new UdpTransport(config.host, config.port, (err) => logger.debug({ err: err.message }, 'udp send failed'))
    const messenger = new Messenger({
      transport: this.#transport,
      key: config.key ?? INSECURE_KEY,
      clock,
      logger: logger.child({ component: 'net' }),
      events: {
        sent: (type) => this.metrics.datagramsSent.inc({ type }),
        received: (type) => this.metrics.datagramsReceived.inc({ type }),
        dropped: (reason) => this.metrics.datagramsDropped.inc({ reason }),
      },
    })
    this.membership = new Membership({
      address: joinAddress(this.#advertiseHost, config.port),
      apiPort: config.apiPort,
      join: config.join,
      foundIfAlone: config.foundIfAlone,
      timings: config.membership,
      messenger,
      clock,
      logger: logger.child({ component: 'membership' }),
      resolveDoors: (doors) => resolveDoors(doors, { host: this.#advertiseHost, port: config.port }),
      onEvent: (event) => this.metrics.membershipEvents.inc({ event }),
      onIdChosen: (id) => void this.#saveId(id),
    })
    this.detector = new FailureDetector({
      membership: this.membership,
      messenger,
      clock,
      timings: config.membership,
      logger: logger.child({ component: 'detector' }),
      onEvent: (event) => this.metrics.membershipEvents.inc({ event }),
      onDeathDeclared: (_id, silentForMs) => this.metrics.deathDetection.observe(silentForMs / 1000),
    })
    this.membership.onViewChange(({ after }) => {
      this.metrics.guests.set(after.guests.length)
      this.metrics.epoch.set(after.epoch)
      this.metrics.admitted.set(after.guests.length > 0 ? 1 : 0)
    })
  }

  get apiPort(): number {
    return this.#apiPort
  }

  async start(): Promise<void> {
    const c = this.config
    if (c.insecure) this.log.warn('running without a party key (--insecure): anyone who reaches these ports can join and read data')
    await mkdir(c.dataDir, { recursive: true })
    await this.#transport.start()
    this.#api = createApi({
      host: c.apiHost,
      port: c.apiPort,
      membership: this.membership,
      metrics: this.metrics,
      logger: this.log.child({ component: 'api' }),
    })
    await this.#api.listen({ host: c.apiHost, port: c.apiPort })
    const addr = this.#api.server.address()
    this.#apiPort = typeof addr === 'object' && addr ? addr.port : c.apiPort
    this.membership.start(await this.loadId())
    this.detector.start()
    this.log.info({ address: this.membership.address, api: joinAddress(c.apiHost, this.#apiPort), join: c.join }, 'peer started')
  }

  /** Waits until admitted to the party. */
  admitted(signal?: AbortSignal): Promise<void> {
    return this.membership.admitted(signal)
  }

  /** Graceful leave, then stop. */
  async leave(): Promise<void> {
    const confirmed = await this.membership.leave()
    this.log.info({ confirmed }, confirmed ? 'left the party' : 'leaving without confirmation')
    await this.stop()
  }

  async stop(): Promise<void> {
    this.detector.stop()
    this.membership.stop()
    await this.#api?.close()
    await this.#transport.stop()
  }

  async loadId(): Promise<string | undefined> {
    try {
      const id = (await readFile(join(this.config.dataDir, 'peer-id'), 'utf8')).trim()
      return GuestId.safeParse(id).success ? id : undefined
    } catch {
      return undefined
    }
  }

  async #saveId(id: string): Promise<void> {
    try {
      const file = join(this.config.dataDir, 'peer-id')
      await writeFile(`${file}.tmp`, `${id}\n`)
      await rename(`${file}.tmp`, file)
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not save peer id')
    }
  }
}
