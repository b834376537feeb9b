import assert from 'node:assert/strict'
import { bytesOf, sha256 } from '../../helpers/files.ts'
import { CHART } from '../../helpers/helm.ts'
import { waitFor } from '../../helpers/wait.ts'
import type { InClusterRequest, InClusterResponse, LocalCluster } from './cluster.ts'

const MiB = 1024 * 1024

export interface Stored {
  name: string
  hash: string
}

export interface PeerPod {
  name: string
  uid: string
  ready: boolean
  restarts: number
}

/** Values for every install on the test cluster: the image the test kubelet maps onto dist/, small volumes and requests. */
export const TEST_VALUES = [
  '--set',
  'image.repository=houseparty,image.tag=test,persistence.size=1Gi,resources.requests.cpu=10m,resources.requests.memory=32Mi',
]

/**
 * One Helm release of the chart on the test cluster, and what the tests and
 * the benchmark do with it: its pods, its API (through the client Service),
 * waiting until it has settled, putting and verifying files, deleting pods.
 */
export class Release {
  readonly cluster: LocalCluster
  readonly name: string
  readonly namespace: string

  /** The release serves its APIs over HTTPS (the chart's default, tls.enabled). */
  readonly tls: boolean

  constructor(cluster: LocalCluster, name: string, options: { namespace?: string; tls?: boolean } = {}) {
    this.cluster = cluster
    this.name = name
    this.namespace = options.namespace ?? name
    this.tls = options.tls ?? true
  }

  get scheme(): string {
    return this.tls ? 'https' : 'http'
  }

  get api(): string {
    return `${this.scheme}://${this.name}-houseparty.${this.namespace}.svc.cluster.local:7480`
  }

  get s3Endpoint(): string {
    return `${this.scheme}://${this.name}-houseparty.${this.namespace}.svc.cluster.local:7490`
  }

  /** A peer pod's own API, by its stable DNS name. */
  podApi(pod: string): string {
    return `${this.scheme}://${pod}.${this.name}-houseparty-peers.${this.namespace}.svc.cluster.local:7480`
  }

  /** The CA in the release's TLS Secret (cached; `fresh` reads it again, after a rotation). */
  async ca(fresh = false): Promise<string | undefined> {
    if (!this.tls) return undefined
    if (fresh || this.#ca === undefined) {
      const data = await this.cluster.kubectl('-n', this.namespace, 'get', 'secret', `${this.name}-houseparty-tls`, '-o', 'jsonpath={.data.ca\\.crt}')
      this.#ca = Buffer.from(data, 'base64').toString('utf8')
    }
    return this.#ca
  }

  #ca: string | undefined

  /** A request to the release's API (or a pod's), with its token and, over HTTPS, its CA. */
  async fetch(url: string, init: InClusterRequest = {}): Promise<InClusterResponse> {
    const ca = init.ca ?? (await this.ca())
    return this.cluster.fetch(url, { ...init, headers: { ...(await this.auth()), ...init.headers }, ...(ca ? { ca } : {}) })
  }

  /** `helm install` with the test values and `args`; what helm printed (the chart's notes). */
  async install(...args: string[]): Promise<string> {
    return this.cluster.helm(
      'install',
      this.name,
      CHART,
      '--namespace',
      this.namespace,
      '--create-namespace',
      ...TEST_VALUES,
      ...args,
      '--wait',
      '--timeout',
      '10m',
    )
  }

  /** `helm upgrade` with the test values and `args`: the StatefulSet rolls its pods one by one. */
  async upgrade(...args: string[]): Promise<void> {
    await this.cluster.helm('upgrade', this.name, CHART, '--namespace', this.namespace, ...TEST_VALUES, ...args, '--wait', '--timeout', '15m')
  }

  async uninstall(): Promise<void> {
    await this.cluster.helm('uninstall', this.name, '--namespace', this.namespace, '--wait')
  }

  /** The API token the chart made for the release (cached), or undefined when apiToken.enabled is off. */
  async token(): Promise<string | undefined> {
    if (this.#token === undefined) {
      const data = await this.cluster
        .kubectl('-n', this.namespace, 'get', 'secret', `${this.name}-houseparty`, '-o', 'jsonpath={.data.api-token}')
        .catch(() => '')
      this.#token = data ? Buffer.from(data, 'base64').toString('utf8') : ''
    }
    return this.#token || undefined
  }

  #token: string | undefined

  /** The Authorization header the file API wants (none when the release has no token). */
  async auth(): Promise<Record<string, string>> {
    const token = await this.token()
    return token ? { authorization: `Bearer ${token}` } : {}
  }

  async json<T>(url: string): Promise<T> {
    const res = await this.fetch(url)
    if (res.status !== 200) throw new Error(`${url}: ${res.status} ${res.body.toString().slice(0, 200)}`)
    return JSON.parse(res.body.toString()) as T
  }

  async pods(): Promise<PeerPod[]> {
    const list = JSON.parse(
      await this.cluster.kubectl(
        '-n',
        this.namespace,
        'get',
        'pods',
        '-l',
        `app.kubernetes.io/instance=${this.name},app.kubernetes.io/name=houseparty`,
        '-o',
        'json',
      ),
    ) as {
      items: {
        metadata: { name: string; uid: string; deletionTimestamp?: string }
        status: { conditions?: { type: string; status: string }[]; containerStatuses?: { restartCount: number }[] }
      }[]
    }
    return list.items
      .filter((p) => !p.metadata.deletionTimestamp && !p.metadata.name.includes('-test-'))
      .map((p) => ({
        name: p.metadata.name,
        uid: p.metadata.uid,
        ready: p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
        restarts: p.status.containerStatuses?.[0]?.restartCount ?? 0,
      }))
  }

  /** An unlabelled metric of one peer pod (NaN when the pod does not export it). */
  async metric(pod: string, name: string): Promise<number> {
    const res = await this.fetch(`${this.podApi(pod)}/metrics`)
    return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(res.body.toString())?.[1] ?? 'NaN')
  }

  /** A metric summed over every peer pod. */
  async metricSum(name: string): Promise<number> {
    let sum = 0
    for (const p of await this.pods()) sum += await this.metric(p.name, name)
    return sum
  }

  /** Fragments one peer holds. */
  held(pod: string): Promise<number> {
    return this.metric(pod, 'houseparty_fragments_held')
  }

  async guestId(pod: string): Promise<string> {
    return (await this.json<{ self: string }>(`${this.podApi(pod)}/guests`)).self
  }

  /** Waits until `n` peers are ready and on one list of `n` guests, every file is healthy and houseparty_files_degraded is 0 on every peer. */
  async settled(n: number, files: number, timeoutMs = 5 * 60_000): Promise<void> {
    await waitFor(
      `${this.name}: ${n} ready peers with ${files} healthy files`,
      async () => {
        // What is not there yet goes into the error, which a timeout reports.
        const pods = await this.pods()
        const ready = pods.filter((p) => p.ready)
        if (ready.length !== n)
          throw new Error(
            `ready pods: ${ready.map((p) => p.name).join(', ')}; not ready: ${pods
              .filter((p) => !p.ready)
              .map((p) => p.name)
              .join(', ')}`,
          )
        const guests = await this.json<{ guests: unknown[] }>(`${this.api}/guests`)
        const health = await this.json<{ files: number; healthy: number; answered: number }>(`${this.api}/health/party`)
        if (guests.guests.length !== n || health.files !== files || health.healthy !== files || health.answered !== n)
          throw new Error(`guests ${guests.guests.length}, health ${JSON.stringify(health)}`)
        const degraded = await this.metricSum('houseparty_files_degraded')
        if (degraded !== 0) throw new Error(`houseparty_files_degraded ${degraded}`)
        return true
      },
      { timeoutMs, intervalMs: 1_000 },
    )
  }

  /** Puts `count` files through `api` (the client Service unless a pod's API is given). */
  async putFiles(count: number, prefix = 'e2e', api = this.api): Promise<Stored[]> {
    const out: Stored[] = []
    for (let i = 0; i < count; i++) {
      const data = bytesOf(1 + ((i * 377_711) % MiB), 900 + i)
      const res = await this.fetch(`${api}/files/${prefix}/${i}`, { method: 'PUT', body: data })
      assert.equal(res.status, 201, `put ${prefix}/${i}: ${res.body}`)
      out.push({ name: `${prefix}/${i}`, hash: sha256(data) })
    }
    return out
  }

  /** Reads every file back through `api` (the client Service unless a pod's API is given) and compares hashes. */
  async verify(files: readonly Stored[], api = this.api): Promise<void> {
    for (const f of files) {
      const res = await this.fetch(`${api}/files/${f.name}`)
      assert.equal(res.status, 200, `get ${f.name}: ${res.body.toString().slice(0, 600)}`)
      assert.equal(sha256(res.body), f.hash, `${f.name} came back different`)
    }
  }

  /**
   * Deletes pods and waits until the StatefulSet has made each again: a new
   * pod, ready, on its old volume (unless its claim went too), and answering
   * at its stable DNS name (cluster DNS follows the endpoints a moment after
   * readiness, more so on a loaded machine). `force` kills them at once
   * (--grace-period=0 --force, as when a node is lost): no SIGTERM, so no
   * graceful leave.
   */
  async deletePods(names: string[], options: { force?: boolean; deleted?: () => void } = {}): Promise<void> {
    const before = new Map((await this.pods()).map((p) => [p.name, p.uid]))
    await this.cluster.kubectl('-n', this.namespace, 'delete', 'pod', ...names, '--wait=false', ...(options.force ? ['--grace-period=0', '--force'] : []))
    options.deleted?.()
    await waitFor(
      `${names.join(', ')} to come back`,
      async () => {
        const now = await this.pods()
        if (!names.every((n) => now.some((p) => p.name === n && p.uid !== before.get(n) && p.ready))) return false
        for (const n of names) await this.json(`${this.podApi(n)}/guests`)
        return true
      },
      { timeoutMs: 5 * 60_000, intervalMs: 500 },
    )
  }

  async scale(replicas: number): Promise<void> {
    await this.cluster.kubectl('-n', this.namespace, 'scale', `statefulset/${this.name}-houseparty`, '--replicas', String(replicas))
  }
}
