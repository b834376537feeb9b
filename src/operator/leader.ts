import { type CoordinationV1Api, type V1Lease, V1MicroTime } from '@kubernetes/client-node'
import type { Logger } from '../shared/logger.ts'
import { statusOf } from './kube/api.ts'

export interface LeaseOptions {
  namespace: string
  name: string
  identity: string
  /** A leader that has not renewed for this long has lost the lease. */
  durationMs: number
  log: Logger
  onChange: (leader: boolean) => void
}

/**
 * Leader election on a coordination.k8s.io Lease, as client-go does it: the
 * holder renews every third of the duration; anyone may take a lease whose
 * holder has not renewed within the duration. Every write carries the
 * resourceVersion it read, so of two replicas racing only one wins. A leader
 * that cannot renew in time steps down before another can take over.
 */
export class LeaseElector {
  readonly #api: CoordinationV1Api
  readonly #o: LeaseOptions
  #leader = false
  #renewedAt = 0
  /** The lease record as last seen, and when (our monotonic clock: other machines' clocks may be off). */
  #observed = { record: '', at: 0 }
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  constructor(api: CoordinationV1Api, options: LeaseOptions) {
    this.#api = api
    this.#o = options
  }

  get isLeader(): boolean {
    return this.#leader
  }

  start(): void {
    void this.#tick()
  }

  /** Steps down and gives the lease up, so another replica takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    if (!this.#leader) return
    this.#set(false)
    try {
      const lease = await this.#api.readNamespacedLease({ name: this.#o.name, namespace: this.#o.namespace })
      if (lease.spec?.holderIdentity === this.#o.identity) {
        lease.spec.holderIdentity = undefined
        lease.spec.renewTime = undefined
        lease.spec.acquireTime = undefined
        await this.#api.replaceNamespacedLease({ name: this.#o.name, namespace: this.#o.namespace, body: lease })
      }
    } catch {
      // Released or not, the lease expires on its own.
    }
  }

  async #tick(): Promise<void> {
    try {
      await this.#tryAcquireOrRenew()
    } catch (err) {
      this.#o.log.warn({ err: (err as Error).message }, 'lease: could not reach the API server')
    }
    // A leader that has not renewed for most of the duration steps down before anyone else may take over.
    if (this.#leader && performance.now() - this.#renewedAt > this.#o.durationMs * 0.8) this.#set(false)
    if (!this.#stopped) this.#timer = setTimeout(() => void this.#tick(), this.#o.durationMs / 3)
  }

  async #tryAcquireOrRenew(): Promise<void> {
    const { namespace, name, identity, durationMs } = this.#o
    // MicroTime: the API server wants six fractional digits, which a plain Date does not give.
    const now = new V1MicroTime()
    const spec = { holderIdentity: identity, leaseDurationSeconds: Math.ceil(durationMs / 1000), renewTime: now }
    let lease: V1Lease
    try {
      lease = await this.#api.readNamespacedLease({ name, namespace })
    } catch (err) {
      if (statusOf(err) !== 404) throw err
      await this.#write(() =>
        this.#api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec: { ...spec, acquireTime: now, leaseTransitions: 0 } } }),
      )
      return
    }
    const holder = lease.spec?.holderIdentity
    const record = `${holder}|${lease.spec?.renewTime ? new Date(lease.spec.renewTime).toISOString() : ''}`
    if (record !== this.#observed.record) this.#observed = { record, at: performance.now() }
    // Expired once the holder has not renewed for its lease duration, timed by us since we saw this record.
    const expired = !holder || performance.now() - this.#observed.at > (lease.spec?.leaseDurationSeconds ?? 0) * 1000
    if (holder !== identity && !expired) {
      this.#set(false)
      return
    }
    const taking = holder !== identity
    const acquired = lease.spec?.acquireTime
    lease.spec = {
      ...spec,
      acquireTime: taking || !acquired ? now : new V1MicroTime(acquired),
      leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + (taking ? 1 : 0),
    }
    await this.#write(() => this.#api.replaceNamespacedLease({ name, namespace, body: lease }))
  }

  /** A write that another replica beat (409) means it is not ours. */
  async #write(write: () => Promise<unknown>): Promise<void> {
    try {
      await write()
      this.#renewedAt = performance.now()
      this.#set(true)
    } catch (err) {
      if (statusOf(err) === 409) this.#set(false)
      else throw err
    }
  }

  #set(leader: boolean): void {
    if (leader === this.#leader) return
    this.#leader = leader
    this.#o.log.info({ lease: this.#o.name, identity: this.#o.identity }, leader ? 'became the leader' : 'not the leader')
    this.#o.onChange(leader)
  }
}
