import { type ChildProcess, spawn } from 'node:child_process'
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  makeInformer,
  type V1Endpoints,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
  type V1Service,
} from '@kubernetes/client-node'
import { logOutputTo } from '../../../src/shared/process-log.ts'
import { FatalWait, waitFor } from '../../helpers/wait.ts'
import { BRIDGE_IP } from './netns.ts'

type Informer<T extends KubernetesObject> = ReturnType<typeof makeInformer<T>>

/** Restarts an informer's watch after an error (the API server closes watches now and then). */
function keepWatching<T extends KubernetesObject>(informer: Informer<T>, stopped: () => boolean): void {
  informer.on('error', () => {
    if (!stopped()) setTimeout(() => void informer.start(), 1_000)
  })
}

/**
 * The storage provisioner of the test cluster (test infrastructure): for
 * each claim that waits for a volume it makes a hostPath PersistentVolume
 * (a directory under `dir`), pre-bound to that claim, and the real PV
 * controller binds them. A volume whose claim is gone is deleted with its
 * directory.
 */
export class VolumeProvisioner {
  readonly #core: CoreV1Api
  readonly #kc: KubeConfig
  readonly #dir: string
  readonly #log: (line: string) => void
  #claims: Informer<V1PersistentVolumeClaim> | undefined
  #volumes: Informer<V1PersistentVolume> | undefined
  #stopped = false

  constructor(kc: KubeConfig, dir: string, log: (line: string) => void) {
    this.#kc = kc
    this.#core = kc.makeApiClient(CoreV1Api)
    this.#dir = dir
    this.#log = log
  }

  async start(): Promise<void> {
    this.#claims = makeInformer<V1PersistentVolumeClaim>(this.#kc, '/api/v1/persistentvolumeclaims', () =>
      this.#core.listPersistentVolumeClaimForAllNamespaces(),
    )
    for (const e of ['add', 'update'] as const) this.#claims.on(e, (c) => void this.#provision(c).catch((err) => this.#log(`provisioning failed: ${err}`)))
    keepWatching(this.#claims, () => this.#stopped)
    this.#volumes = makeInformer<V1PersistentVolume>(this.#kc, '/api/v1/persistentvolumes', () => this.#core.listPersistentVolume())
    for (const e of ['add', 'update'] as const) this.#volumes.on(e, (v) => void this.#release(v).catch((err) => this.#log(`volume cleanup failed: ${err}`)))
    keepWatching(this.#volumes, () => this.#stopped)
    await this.#claims.start()
    await this.#volumes.start()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    await this.#claims?.stop()
    await this.#volumes?.stop()
  }

  async #provision(claim: V1PersistentVolumeClaim): Promise<void> {
    if (this.#stopped || claim.status?.phase !== 'Pending' || claim.spec?.volumeName || claim.metadata?.deletionTimestamp) return
    const namespace = claim.metadata?.namespace as string
    const name = `pv-${claim.metadata?.uid}`
    const path = join(this.#dir, name)
    await mkdir(path, { recursive: true })
    await this.#core
      .createPersistentVolume({
        body: {
          metadata: { name, labels: { 'houseparty.test/provisioned': 'true' } },
          spec: {
            capacity: { storage: claim.spec?.resources?.requests?.storage ?? '1Gi' },
            accessModes: claim.spec?.accessModes ?? ['ReadWriteOnce'],
            storageClassName: claim.spec?.storageClassName ?? '',
            persistentVolumeReclaimPolicy: 'Retain',
            hostPath: { path, type: 'Directory' },
            claimRef: { namespace, name: claim.metadata?.name, uid: claim.metadata?.uid },
          },
        },
      })
      .catch((err: { code?: number }) => {
        if (err.code !== 409) throw err
      })
  }

  async #release(volume: V1PersistentVolume): Promise<void> {
    if (this.#stopped || volume.status?.phase !== 'Released' || volume.metadata?.labels?.['houseparty.test/provisioned'] !== 'true') return
    await this.#core.deletePersistentVolume({ name: volume.metadata.name as string }).catch(() => undefined)
    if (volume.spec?.hostPath?.path?.startsWith(this.#dir)) await rm(volume.spec.hostPath.path, { recursive: true, force: true })
  }
}

/**
 * Cluster DNS of the test cluster (test infrastructure): dnsmasq in the
 * bridge namespace, answering from a hosts file made from Services and
 * Endpoints. A Service's name resolves to its endpoints (all of them for a
 * headless Service that publishes not-ready addresses, which the endpoints
 * controller then lists as ready; the ready ones otherwise: with no
 * kube-proxy, DNS stands in for the Service's virtual IP), and every endpoint
 * with a hostname gets `HOSTNAME.SERVICE.NAMESPACE.svc.cluster.local`.
 */
export class ClusterDns {
  readonly #core: CoreV1Api
  readonly #kc: KubeConfig
  readonly #dir: string
  readonly #bridgeNs: string
  readonly #services = new Map<string, V1Service>()
  readonly #endpoints = new Map<string, V1Endpoints>()
  #svcInformer: Informer<V1Service> | undefined
  #epInformer: Informer<V1Endpoints> | undefined
  #dnsmasq: ChildProcess | undefined
  #pending: NodeJS.Timeout | undefined
  #writing: Promise<void> = Promise.resolve()
  #stopped = false

  constructor(kc: KubeConfig, dir: string, bridgeNs: string) {
    this.#kc = kc
    this.#core = kc.makeApiClient(CoreV1Api)
    this.#dir = dir
    this.#bridgeNs = bridgeNs
  }

  get hostsFile(): string {
    return join(this.#dir, 'hosts')
  }

  async start(): Promise<void> {
    await mkdir(this.#dir, { recursive: true })
    await writeFile(this.hostsFile, '', { mode: 0o644 })
    this.#dnsmasq = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.#bridgeNs,
        'dnsmasq',
        '--keep-in-foreground',
        '--log-facility=-',
        `--listen-address=${BRIDGE_IP}`,
        '--bind-interfaces',
        '--no-resolv',
        '--no-hosts',
        `--addn-hosts=${this.hostsFile}`,
        '--local=/cluster.local/',
        '--domain-needed',
        '--user=root',
        `--pid-file=${join(this.#dir, 'dnsmasq.pid')}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const dnsmasq = this.#dnsmasq
    logOutputTo(dnsmasq, join(this.#dir, 'dnsmasq.log'))
    let exited: string | undefined
    dnsmasq.once('exit', (code, signal) => {
      exited = `dnsmasq exited (${signal ?? code}); see ${join(this.#dir, 'dnsmasq.log')}`
      if (!this.#stopped) console.error(`cluster DNS: ${exited}`)
    })
    // The hosts file is reloaded with SIGHUP, which kills `ip netns exec` (or dnsmasq before it sets its handlers):
    // none is sent before dnsmasq has written its pid file, which it does after installing them.
    await waitFor(
      'dnsmasq to start',
      async () => {
        if (exited) throw new FatalWait(exited)
        return stat(join(this.#dir, 'dnsmasq.pid')).then(
          (s) => s.size > 0,
          () => false,
        )
      },
      { timeoutMs: 30_000 },
    )
    const watch = <T extends V1Service | V1Endpoints>(path: string, list: () => Promise<{ items: T[] }>, into: Map<string, T>): Informer<T> => {
      const informer = makeInformer<T>(this.#kc, path, list as never)
      const key = (o: T): string => `${o.metadata?.namespace}/${o.metadata?.name}`
      informer.on('add', (o) => {
        into.set(key(o), o)
        this.#schedule()
      })
      informer.on('update', (o) => {
        into.set(key(o), o)
        this.#schedule()
      })
      informer.on('delete', (o) => {
        into.delete(key(o))
        this.#schedule()
      })
      keepWatching(informer, () => this.#stopped)
      return informer
    }
    this.#svcInformer = watch('/api/v1/services', () => this.#core.listServiceForAllNamespaces(), this.#services)
    this.#epInformer = watch('/api/v1/endpoints', () => this.#core.listEndpointsForAllNamespaces(), this.#endpoints)
    await this.#svcInformer.start()
    await this.#epInformer.start()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#pending)
    await this.#writing.catch(() => undefined)
    await this.#svcInformer?.stop()
    await this.#epInformer?.stop()
    this.#dnsmasq?.kill('SIGTERM')
  }

  /** The addresses the hosts file gives `host` now (one `IP NAME` line each, as #write makes them). */
  async addressesOf(host: string): Promise<string[]> {
    const lines = (await readFile(this.hostsFile, 'utf8')).split('\n')
    return lines.map((line) => line.split(' ')).flatMap(([ip, name]) => (name === host && ip ? [ip] : []))
  }

  /** Writes the hosts file a moment after the last change (changes come in bursts), and tells dnsmasq. */
  #schedule(): void {
    clearTimeout(this.#pending)
    this.#pending = setTimeout(() => {
      // Chained, so stop() can wait for the last write; a write that loses the race with stop() is of no interest.
      this.#writing = this.#writing
        .then(() => this.#write())
        .catch((err: Error) => {
          if (!this.#stopped) console.error(`cluster DNS: could not write the hosts file: ${err.message}`)
        })
    }, 50)
  }

  async #write(): Promise<void> {
    if (this.#stopped) return
    const lines: string[] = []
    for (const [key, svc] of this.#services) {
      const [namespace, name] = key.split('/') as [string, string]
      const fqdn = `${name}.${namespace}.svc.cluster.local`
      for (const subset of this.#endpoints.get(key)?.subsets ?? []) {
        for (const a of subset.addresses ?? []) {
          lines.push(`${a.ip} ${fqdn}`)
          if (a.hostname) lines.push(`${a.ip} ${a.hostname}.${fqdn}`)
        }
        // A headless Service's not-ready pods keep their own names (StatefulSet pods are reachable by name while they start).
        if (svc.spec?.clusterIP === 'None') for (const a of subset.notReadyAddresses ?? []) if (a.hostname) lines.push(`${a.ip} ${a.hostname}.${fqdn}`)
      }
    }
    const tmp = `${this.hostsFile}.tmp`
    await writeFile(tmp, `${lines.join('\n')}\n`, { mode: 0o644 })
    await rename(tmp, this.hostsFile)
    this.#dnsmasq?.kill('SIGHUP')
  }
}
