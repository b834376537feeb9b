import { createReadStream } from 'node:fs'
import { mkdir, stat } from 'node:fs/promises'
import { basename } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { type Clock, systemClock } from '../shared/clock.ts'
import type { PeerConfig } from '../shared/config.ts'
import { HeapGovernor } from '../shared/heap-governor.ts'
import { backoffMs, delay, InFlight, Lifecycle } from '../shared/lifecycle.ts'
import type { Logger } from '../shared/logger.ts'
import { createApi, HTTP_CLOSE_GRACE_MS, httpComponent, ServingCertificate } from './api/index.ts'
import { primaryAddress, resolveDoors } from './doors.ts'
import { fileEvents, recoveryEvents, scrubEvents, transferEvents, viewMetrics } from './file-events.ts'
import { FileService, type FilesContext, LoadEstimate, type PutResult } from './files/index.ts'
import { DataDirLock, type Identity, loadIdentity } from './identity/index.ts'
import { KeyStore } from './keys/index.ts'
import { peerDomains } from './kube/index.ts'
import { Membership, MembershipFile, rosterOf } from './membership/index.ts'
import { createPeerMetrics, type PeerMetrics } from './metrics/index.ts'
import {
  CallBatcher,
  ConnectionPool,
  type DatagramTransport,
  type DialOptions,
  joinAddress,
  Messenger,
  PeerTls,
  PintServer,
  sendsEncrypted,
  takesClear,
  UdpTransport,
} from './net/index.ts'
import { arcHealth, Caretaker, copyNeeded, drain, partyHealth, Scrubber } from './recovery/index.ts'
import { s3Service } from './s3/index.ts'
import { type StopIntent, stopIntent } from './shutdown/index.ts'
import { FragmentStore } from './store/index.ts'
import { answerTracker, TrackerStore } from './tracker/index.ts'
import { FragmentClient, pintRouter, TrackerClient } from './transfer/index.ts'

export interface PeerDeps {
  clock?: Clock
  transport?: DatagramTransport
}

const INSECURE_KEY = Buffer.alloc(0)
/** How long a stopping peer serves files after /readyz turns 503: a Service takes a moment to stop sending it requests. */
const STEP_OUT_MS = 1_500

/**
 * One guest of the party: wires the layers together and starts them in
 * order (network, membership, detection, API); stops them in reverse.
 */
export class Peer {
  readonly config: PeerConfig
  readonly log: Logger
  readonly metrics: PeerMetrics
  readonly identity: Identity
  readonly membership: Membership
  readonly store: FragmentStore
  readonly trackers: TrackerStore
  readonly files: FileService
  /** S3 access keys, kept in the party. */
  readonly keys: KeyStore
  readonly caretaker: Caretaker
  readonly scrubber: Scrubber
  readonly #transport: DatagramTransport
  readonly #pint: PintServer
  /** Connections to other guests kept between calls (tracker calls, small fragments). */
  readonly #pool: ConnectionPool
  /** The components, started in order and stopped in reverse. */
  readonly #life = new Lifecycle()
  /** File API requests being answered: a leaving peer lets them finish before its goodbye. */
  readonly #fileRequests = new InFlight()
  readonly #advertiseHost: string
  #api: { readonly port: number } | undefined
  #s3: { readonly port: number } | undefined
  /** Set when a graceful leave starts: readiness fails at once, so Services stop sending requests while it drains. */
  #leaving = false
  /** Set just before the goodbye: file requests are turned away with ERR_LEAVING from then on. */
  #closing = false
  /** Held from open() to stop(), when opened on a data dir (tests may construct a peer without one). */
  #lock: DataDirLock | undefined
  #keyRejectedLoggedAt = Number.NEGATIVE_INFINITY

  /**
   * Opens a peer on its data dir: its identity is loaded (or made and saved)
   * there before anything else, so it keeps one place on the ring for life.
   */
  static async open(config: PeerConfig, logger: Logger, deps: PeerDeps = {}): Promise<Peer> {
    await mkdir(config.dataDir, { recursive: true })
    // Before the identity: a second process on this dir must not even count a start.
    const lock = await DataDirLock.acquire(config.dataDir)
    try {
      const identity = await loadIdentity(config.dataDir)
      logger.info({ id: identity.id, incarnation: identity.incarnation, fresh: identity.fresh }, identity.fresh ? 'new identity made' : 'identity loaded')
      const peer = new Peer(config, logger.child({ guest: identity.id }), identity, deps)
      peer.#lock = lock
      return peer
    } catch (err) {
      await lock.release()
      throw err
    }
  }

  constructor(config: PeerConfig, logger: Logger, identity: Identity, deps: PeerDeps = {}) {
    this.config = config
    this.log = logger
    this.identity = identity
    const clock = deps.clock ?? systemClock
    this.store = new FragmentStore(config.dataDir, logger.child({ component: 'store' }), Date.now, config.atRest.keyFile)
    this.trackers = new TrackerStore(config.dataDir, logger.child({ component: 'tracker' }), { decisionsHeld: () => this.membership.uncertain() })
    this.metrics = createPeerMetrics(undefined, {
      store: () => this.store.stats(),
      trackedFiles: () => this.trackers.size,
      lagMs: () => this.membership.lag(),
    })
    this.#advertiseHost = config.advertiseHost || (config.host === '0.0.0.0' || config.host === '::' ? primaryAddress() : config.host)
    this.#transport = deps.transport ?? new UdpTransport(config.host, config.port, (err) => logger.debug({ err: err.message }, 'udp send failed'))
    const messenger = new Messenger({
      transport: this.#transport,
      key: config.key ?? INSECURE_KEY,
      encryption: config.peerEncryption,
      clock,
      logger: logger.child({ component: 'net' }),
      events: {
        sent: (type) => this.metrics.datagramsSent.inc({ type }),
        received: (type) => this.metrics.datagramsReceived.inc({ type }),
        dropped: (reason) => this.metrics.datagramsDropped.inc({ reason }),
        keyRejected: (from) => this.#keyRejected(from),
      },
    })
    this.membership = new Membership({
      self: { id: identity.id, incarnation: identity.incarnation, address: joinAddress(this.#advertiseHost, config.port), apiPort: config.apiPort },
      join: config.join,
      // In a StatefulSet every pod gets the same flags; only the first pod may found a party.
      foundIfAlone: config.foundIfAlone && (config.podName === '' || config.podName.endsWith('-0')),
      timings: config.membership,
      messenger,
      clock,
      logger: logger.child({ component: 'membership' }),
      resolveDoors: (doors) => resolveDoors(doors, { host: this.#advertiseHost, port: config.port }),
      heldBytes: () => this.store.bytes,
      state: new MembershipFile(config.dataDir),
      onEvent: (event) => this.metrics.membershipEvents.inc({ event }),
      onDeathDeclared: (_id, silentMs) => this.metrics.deathDetection.observe(silentMs / 1000),
      onUnexpected: () => this.metrics.datagramsDropped.inc({ reason: 'unexpected' }),
    })
    const key = config.key ?? INSECURE_KEY
    // A kept connection is closed well before the other side's idle timeout (the same setting party-wide) would cut it.
    this.#pool = new ConnectionPool({ idleMs: Math.min(config.transfer.idleTimeoutMs / 2, 10_000) })
    const tls = new PeerTls(key)
    const dial: DialOptions = {
      key,
      tls: sendsEncrypted(config.peerEncryption) ? tls : undefined, // in clear only while an earlier release may answer
      clock,
      connectTimeoutMs: config.transfer.connectTimeoutMs,
      idleTimeoutMs: config.transfer.idleTimeoutMs,
      pool: this.#pool,
    }
    const roster = rosterOf(this.membership)
    const batcher = new CallBatcher({ dial })
    const ctx: FilesContext = {
      roster,
      fragments: new FragmentClient({ roster, dial, store: this.store, log: logger.child({ component: 'files' }), batcher }),
      trackers: new TrackerClient(roster, dial, config.trackerReplicas, (body) => answerTracker(body, this.trackers), batcher),
      coding: config.coding,
      inlineBytes: config.inlineBytes,
      clock,
      load: new LoadEstimate((id) => this.membership.heldBytes(id), clock),
      log: logger.child({ component: 'files' }),
      events: fileEvents(this.metrics),
    }
    this.files = new FileService(ctx)
    this.keys = new KeyStore(this.files, config.key, { accessKey: config.s3.accessKey, secret: config.s3.secretKey })
    this.caretaker = new Caretaker({
      ctx,
      records: this.trackers,
      settings: config.recovery,
      clock,
      log: logger.child({ component: 'recovery' }),
      events: recoveryEvents(this.metrics),
    })
    this.scrubber = new Scrubber(this.store, config.scrub, scrubEvents(this.metrics), logger.child({ component: 'scrub' }))
    this.#pint = new PintServer({
      key,
      tls,
      plain: takesClear(config.peerEncryption),
      handshakeTimeoutMs: config.transfer.connectTimeoutMs,
      clock,
      logger: logger.child({ component: 'tcp' }),
      idleTimeoutMs: config.transfer.idleTimeoutMs,
      handler: pintRouter({
        store: this.store,
        trackers: this.trackers,
        arcHealth: async (arc) => ({
          ok: true as const,
          ...((await this.caretaker.quietHealth(arc)) ?? (await arcHealth(this.files.context, this.trackers, arc))),
        }),
        served: (op) => this.metrics.tcpRequests.inc({ op }),
        needed: (query) => copyNeeded(this.files.context, query),
        events: transferEvents(this.metrics),
      }),
      onReject: (reason) => this.metrics.tcpRejected.inc({ reason }),
    })
    this.membership.onViewChange((change) => {
      this.caretaker.viewChanged(change)
      viewMetrics(this.metrics, change.after)
    })
  }

  get apiPort(): number {
    return this.#api?.port ?? 0
  }

  /** The S3 API's port; 0 when it is off. */
  get s3Port(): number {
    return this.#s3?.port ?? 0
  }

  /**
   * Starts the components in order: the stores (opened from disk), the
   * datagram and TCP listeners, membership, recovery, and last the HTTP API,
   * which needs all of them. stop() takes them down in reverse.
   */
  async start(): Promise<void> {
    try {
      await this.#startComponents()
    } catch (err) {
      // A component that would not start (a port in use, an unreadable store): stop those that did, release the data dir.
      await this.stop()
      throw err
    }
  }

  async #startComponents(): Promise<void> {
    const c = this.config
    if (c.insecure) this.log.warn('running without a party key (--insecure): anyone who reaches these ports can join and read data')
    const life = this.#life
    await life.start('stores', {
      start: async () => {
        const { fragments, cleaned } = await this.store.open()
        const records = await this.trackers.open()
        this.log.info({ fragments, cleaned, records }, 'store opened')
      },
      stop: async () => {
        await this.trackers.close()
        await this.store.close()
      },
    })
    await life.start('heap', new HeapGovernor({ slackBytes: c.heapSlackMb * 2 ** 20, collected: (reason) => this.metrics.heapCollections.inc({ reason }) }))
    await life.start('udp', { start: () => this.#transport.start(), stop: () => this.#transport.stop() })
    await life.start('tcp', {
      start: () => this.#pint.listen(c.host, c.port),
      stop: async () => {
        this.#pool.close()
        await this.#pint.close()
      },
    })
    this.membership.announceDomains(await peerDomains(c.domains, this.log))
    await life.start('membership', { start: () => this.membership.start(), stop: async () => this.membership.stop() })
    await life.start('recovery', this.caretaker)
    await life.start('scrub', this.scrubber)
    const certificate = c.tls.certFile ? new ServingCertificate(c.tls, this.log.child({ component: 'tls' })) : undefined
    if (certificate) await life.start('tls', certificate)
    const api = httpComponent(() => this.#createApi(), c.apiHost, c.apiPort, certificate)
    this.#api = api
    await life.start('api', api)
    if (c.s3.port !== 0) {
      const s3 = s3Service({
        settings: c.s3,
        keys: this.keys,
        host: c.apiHost,
        files: this.files,
        metrics: this.metrics,
        logger: this.log.child({ component: 's3' }),
        admitted: () => this.membership.isGuest && !this.#closing,
        inFlight: this.#fileRequests,
        certificate,
      })
      this.#s3 = s3.http
      await life.start('s3', s3.http)
      await life.start('s3-expiry', s3.expiry)
    }
    const { id, incarnation } = this.identity
    this.log.info({ id, incarnation, address: this.membership.address, api: joinAddress(c.apiHost, this.apiPort), join: c.join }, 'peer started')
    if (!c.apiToken) this.log.warn({ api: this.apiPort }, 'the file API has no token (--api-token): whoever reaches it can read, write and delete every file')
  }

  #createApi(): FastifyInstance {
    const c = this.config
    return createApi({
      host: c.apiHost,
      port: c.apiPort,
      membership: this.membership,
      leaving: () => this.#leaving,
      metrics: this.metrics,
      logger: this.log.child({ component: 'api' }),
      files: {
        files: this.files,
        apiToken: c.apiToken,
        admitted: () => this.membership.isGuest,
        closing: () => this.#closing,
        inFlight: this.#fileRequests,
        keys: this.keys,
      },
      partyHealth: (signal) => partyHealth(this.files.context, signal),
      heldBytes: () => this.store.bytes,
    })
  }

  /** Waits until admitted to the party. */
  admitted(signal?: AbortSignal): Promise<void> {
    return this.membership.admitted(signal)
  }

  /**
   * Graceful leave. For good (`handoff`): hands fragments and tracker records
   * to the others for up to --leave-grace-ms, says goodbye, then stops. For a
   * restart: says goodbye at once, so nobody waits on this peer while it is
   * away, and moves nothing; its fragments wait for it to come back.
   * Without an intent, --on-stop decides (see src/peer/shutdown).
   */
  async leave(intent?: StopIntent): Promise<void> {
    // Draining from now: /readyz turns 503, and no repair, rebalance or scrub starts here (those under way finish first).
    this.#leaving = true
    const leavingSince = performance.now()
    await Promise.all([this.caretaker.stop(), this.scrubber.stop()])
    intent ??= await stopIntent(this.config.onStop, this.config.podName, this.log)
    if (intent === 'handoff' && this.membership.isGuest && this.config.leaveGraceMs > 0) {
      const started = performance.now()
      try {
        const result = await drain({
          ctx: this.files.context,
          store: this.store,
          records: this.trackers,
          log: this.log.child({ component: 'leave' }),
          throttle: this.caretaker.throttle,
          signal: AbortSignal.any([AbortSignal.timeout(this.config.leaveGraceMs), this.#life.signal]),
          moved: () => this.metrics.fragmentsMoved.inc({ reason: 'leave' }),
          handOffRecords: (others) => this.caretaker.handOff(this.membership.id, others, AbortSignal.timeout(5_000)),
        })
        this.log.info({ ...result, seconds: (performance.now() - started) / 1000 }, 'handoff before leaving done')
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'handoff before leaving failed; the others will rebuild what is left')
      }
    }
    // Once it says goodbye this peer knows no guests, and a read through it would find no fragment: new file requests
    // are turned away (ERR_LEAVING, to ask another peer) and those under way finish before the goodbye.
    await delay(Math.max(0, STEP_OUT_MS - (performance.now() - leavingSince)))
    this.#closing = true
    await this.#fileRequests.settled(AbortSignal.timeout(HTTP_CLOSE_GRACE_MS))
    const confirmed = await this.membership.leave(intent === 'restart' ? 'restart' : 'leave')
    this.log.info({ confirmed, intent }, confirmed ? 'left the party' : 'leaving without confirmation')
    await this.stop()
  }

  /** A door answered that our datagrams fail its key: say so (every 30 s at most), since otherwise it looks like silence. */
  #keyRejected(from: string): void {
    const now = Date.now()
    if (now - this.#keyRejectedLoggedAt < 30_000) return
    this.#keyRejectedLoggedAt = now
    this.log.warn({ from }, "a peer answers but rejects this peer's party key: is --key-file (or --key) the party's key?")
  }

  /** Stops every component in reverse order of start, each waiting for its work in flight; the data-dir lock goes last. */
  async stop(): Promise<void> {
    const failures = await this.#life.stop()
    for (const [component, err] of failures) this.log.warn({ component, err: (err as Error).message }, 'component did not stop cleanly')
    await this.#lock?.release()
    this.#lock = undefined
  }

  /**
   * Puts local files into the party once it has enough guests (the seed's
   * `peer ... FILE...`). Retries with backoff while the party is too small.
   */
  async putLocalFiles(paths: readonly string[]): Promise<PutResult[]> {
    const results: PutResult[] = []
    const signal = this.#life.signal
    for (const path of paths) {
      for (let attempt = 0; ; attempt++) {
        try {
          const result = await this.files.put(basename(path), createReadStream(path), { signal, sizeHint: (await stat(path)).size })
          this.log.info({ path, name: result.name, size: result.size, hash: result.hash }, 'file put')
          results.push(result)
          break
        } catch (err) {
          if (signal.aborted) throw err
          const code = (err as { code?: string }).code
          if (code !== 'ERR_NOT_ENOUGH_PEERS' && code !== 'ERR_TRANSFER_FAILED') throw err
          this.log.info({ path, err: (err as Error).message }, 'party too small for this file yet; retrying')
          await delay(backoffMs(attempt, 250, 5000), signal)
        }
      }
    }
    return results
  }
}
