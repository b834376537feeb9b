import { createServer, type Server } from 'node:http'
import { type Informer, type KubeConfig, type KubernetesObject, makeInformer, type ObjectCache } from '@kubernetes/client-node'
import type { Logger } from '../shared/logger.ts'
import { reconcilePartyCrasher } from './chaos/reconcile.ts'
import type { OperatorConfig } from './config.ts'
import { leaderOnly, partyClientFor, type ReconcileContext } from './context.ts'
import { KubeApi } from './kube/api.ts'
import { LeaseElector } from './leader.ts'
import { createOperatorMetrics, type OperatorMetrics } from './metrics.ts'
import { WorkQueue } from './queue.ts'
import { GROUP, VERSION } from './resources.ts'
import { reconcileHouseParty } from './scaling/reconcile.ts'

const KINDS = {
  HouseParty: { plural: 'houseparties', reconcile: reconcileHouseParty },
  PartyCrasher: { plural: 'partycrashers', reconcile: reconcilePartyCrasher },
} as const
type Kind = keyof typeof KINDS

/** How long a stopping operator waits for reconciles under way before it aborts them and gives up the Lease. */
const STOP_GRACE_MS = 10_000

/**
 * The House Party operator: informers on HouseParty and PartyCrasher in one
 * namespace feed a work queue; only the replica holding the leader Lease
 * reconciles. Spec changes (a new generation) and resyncs wake a resource,
 * status writes do not. Each reconcile re-reads the resource and the party
 * rather than trusting the event.
 */
export class Operator {
  readonly metrics: OperatorMetrics
  readonly #config: OperatorConfig
  readonly #log: Logger
  readonly #kube: KubeApi
  readonly #kc: KubeConfig
  readonly #queue: WorkQueue
  readonly #elector: LeaseElector
  readonly #informers: { kind: Kind; informer: Informer<KubernetesObject> & ObjectCache<KubernetesObject> }[] = []
  readonly #generations = new Map<string, number | undefined>()
  #server: Server | undefined
  #stopped = false
  /** Aborted when this replica stops leading: the reconciles of that term stop calling the API. */
  #term = new AbortController()

  constructor(kc: KubeConfig, config: OperatorConfig, log: Logger) {
    this.#kc = kc
    this.#config = config
    this.#log = log
    this.#kube = new KubeApi(kc)
    this.metrics = createOperatorMetrics()
    const ctx: Omit<ReconcileContext, 'signal'> = {
      kube: this.#kube,
      metrics: this.metrics,
      log,
      now: () => Date.now(),
      random: Math.random,
      resyncMs: config.resyncMs,
      party: (namespace, ref, podIp) => partyClientFor(this.#kube, namespace, ref, podIp),
    }
    this.#queue = new WorkQueue(
      (key) => this.#reconcile(ctx, key),
      (key, err) => {
        this.metrics.reconciles.inc({ kind: key.split('/')[0], result: 'error' })
        log.warn({ key, err: (err as Error).message }, 'reconcile failed; trying again with backoff')
      },
    )
    this.#elector = new LeaseElector(this.#kube.coordination, {
      namespace: config.namespace,
      name: config.leaseName,
      identity: config.identity,
      durationMs: config.leaseDurationMs,
      log,
      onChange: (leader) => {
        this.metrics.leader.set(leader ? 1 : 0)
        this.#term.abort(new Error('leadership lost'))
        this.#term = new AbortController()
        if (leader) this.#enqueueAll()
      },
    })
  }

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      if (req.url === '/metrics') {
        void this.metrics.registry.metrics().then((body) => res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(body))
      } else if (req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', leader: this.#elector.isLeader }))
      } else res.writeHead(404).end()
    })
    await new Promise<void>((ok) => this.#server?.listen(this.#config.port, ok))
    for (const kind of Object.keys(KINDS) as Kind[]) this.#watch(kind)
    for (const { informer } of this.#informers) await informer.start()
    this.#elector.start()
    this.#log.info({ namespace: this.#config.namespace, identity: this.#config.identity, port: this.#config.port }, 'operator started')
  }

  /** Stops reconciling and waits for the reconciles under way (at most STOP_GRACE_MS), then gives up the Lease. */
  async stop(): Promise<void> {
    this.#stopped = true
    const grace = setTimeout(() => this.#term.abort(new Error('operator stopping')), STOP_GRACE_MS)
    await this.#queue.stop()
    clearTimeout(grace)
    this.#term.abort(new Error('operator stopping'))
    await this.#elector.stop()
    for (const { informer } of this.#informers) await informer.stop().catch(() => undefined)
    await new Promise<void>((ok) => (this.#server ? this.#server.close(() => ok()) : ok()))
  }

  #watch(kind: Kind): void {
    const { plural } = KINDS[kind]
    const namespace = this.#config.namespace
    const informer = makeInformer<KubernetesObject>(this.#kc, `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${plural}`, () =>
      this.#kube.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural }),
    )
    const key = (o: KubernetesObject): string => `${kind}/${o.metadata?.namespace}/${o.metadata?.name}`
    const wake = (o: KubernetesObject): void => {
      // A status write bumps the resourceVersion, not the generation: only spec changes wake a resource.
      const k = key(o)
      if (this.#generations.has(k) && this.#generations.get(k) === o.metadata?.generation) return
      this.#generations.set(k, o.metadata?.generation)
      this.#queue.add(k)
    }
    informer.on('add', wake)
    informer.on('update', wake)
    // Each (re)connect reconciles every resource the cache holds: while the API server restarts, a reconcile may
    // read its resource as 404 (its CRD not yet served again) and end as if it were deleted, and no spec change
    // would wake it afterwards. Reconciles re-read what they act on, so a spare one does nothing.
    informer.on('connect', () => {
      for (const o of informer.list()) this.#queue.add(key(o))
    })
    informer.on('delete', (o) => {
      this.#generations.delete(key(o))
      this.#queue.forget(key(o))
    })
    // The informer relists by itself after 410 Gone; on other errors (API server down) it stops, so start it again.
    informer.on('error', (err) => {
      this.#log.warn({ kind, err: (err as Error)?.message }, 'watch failed; starting it again')
      if (!this.#stopped) setTimeout(() => void informer.start().catch(() => undefined), 2_000)
    })
    this.#informers.push({ kind, informer })
  }

  #enqueueAll(): void {
    for (const { kind, informer } of this.#informers) {
      for (const o of informer.list()) this.#queue.add(`${kind}/${o.metadata?.namespace}/${o.metadata?.name}`)
    }
  }

  async #reconcile(base: Omit<ReconcileContext, 'signal'>, key: string): Promise<{ requeueAfterMs?: number }> {
    if (!this.#elector.isLeader) return {}
    const { signal } = this.#term
    const ctx: ReconcileContext = { ...base, signal, kube: leaderOnly(base.kube, signal) }
    const [kind, namespace, name] = key.split('/') as [Kind, string, string]
    const end = this.metrics.reconcileSeconds.startTimer({ kind })
    try {
      const result = await KINDS[kind].reconcile(ctx, namespace, name)
      this.metrics.reconciles.inc({ kind, result: 'ok' })
      return result
    } finally {
      end()
    }
  }
}
