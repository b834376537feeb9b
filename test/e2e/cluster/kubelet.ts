import { type ChildProcess, spawn } from 'node:child_process'
import { mkdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { CoreV1Api, type KubeConfig, makeInformer, PatchStrategy, setHeaderOptions, type V1Container, type V1Pod, type V1Probe } from '@kubernetes/client-node'
import { logOutputTo } from '../../../src/shared/process-log.ts'
import { type ExecServer, startExecServer } from './exec-server.ts'
import type { ImageConfig } from './image.ts'
import type { PodNetwork } from './netns.ts'
import { containerEnv, PodVolumes } from './pod-spec.ts'
import { httpProbe, nodeStatus, podStatus } from './pod-status.ts'
import { PolicyEnforcer } from './policies.ts'

/**
 * A kubelet for tests (test infrastructure, not a product component). It
 * registers one Node (with the labels it is given), and runs the pods bound
 * to it. There is no kube-scheduler: the test decides where each pod goes
 * (`schedule`, given to one kubelet of the cluster, binds pending pods to the
 * node the test assigns them, unless that node is cordoned). It runs each pod's container as a process in the pod's own network
 * namespace, with its own IP, hostname and environment (downward API,
 * Secrets and ConfigMaps read from the API), its volumes bind-mounted in a
 * private mount namespace (a PersistentVolumeClaim is the directory of the
 * PersistentVolume bound to it), probes run as the pod spec says (through the
 * agent in the bridge namespace), status reported back, and SIGTERM then
 * SIGKILL after the grace period on delete. It runs the command and args of
 * the pod spec, with the image's entrypoint mapped onto this checkout.
 *
 * It also serves exec (exec-server.ts; the API server reaches it at the
 * node's ExternalIP, loopback) and enforces deny-all NetworkPolicies (a
 * policy selecting a pod with no rules for a direction); policies with rules
 * are logged and not enforced.
 */
/** How often the test kubelet lists its pods again, whatever its watch said. */
const RESYNC_MS = 10_000

export interface KubeletOptions {
  kc: KubeConfig
  network: PodNetwork
  /** Pods' volumes, secrets and logs go under here. */
  dir: string
  /** The agent's unix socket, for probes. */
  agentSocket: string
  nodeName: string
  /** Labels of its Node besides kubernetes.io/hostname and kubernetes.io/os (e.g. topology.kubernetes.io/zone). */
  labels?: Record<string, string>
  /** The node a pending pod goes to (undefined: it stays Pending for now, as on a cordoned node). One kubelet of a cluster binds. */
  schedule?: (pod: V1Pod) => Promise<string | undefined>
  /** The exec endpoint's serving certificate (the API server verifies it against the cluster CA). */
  tls: { cert: string; key: string }
  image: ImageConfig
  log: (line: string) => void
}

interface Probe {
  failures: number
  successes: number
  nextAt: number
}

interface PodRun {
  key: string
  uid: string
  pod: V1Pod
  net?: { ns: string; ip: string }
  proc?: ChildProcess
  /** Container restarts (a process that exited and was started again). */
  restarts: number
  startedAt?: string
  started: boolean
  ready: boolean
  exitCode?: number | null
  terminating: boolean
  restartAt?: number
  probes: { startup: Probe; readiness: Probe; liveness: Probe }
  lastStatus: string
  /** When its Secret and ConfigMap volumes were last brought up to date. */
  volumesSyncedAt?: number
  /** The container's environment, for exec. */
  env?: Record<string, string>
  /** The NetworkPolicy isolation last applied to its namespace, as JSON. */
  isolation?: string
}

/** How often a running pod's Secret and ConfigMap volumes follow the API (a real kubelet: about a minute; kept short for tests). */
const VOLUME_SYNC_MS = 3_000

const newProbe = (): Probe => ({ failures: 0, successes: 0, nextAt: 0 })

export class TestKubelet {
  readonly #o: KubeletOptions
  readonly #core: CoreV1Api
  readonly #runs = new Map<string, PodRun>()
  readonly #queue = new Map<string, Promise<void>>()
  /** Each pod's volumes as host directories, and the mount points made for them. */
  readonly #volumes: PodVolumes
  readonly #policies: PolicyEnforcer
  #informer: ReturnType<typeof makeInformer<V1Pod>> | undefined
  #exec: ExecServer | undefined
  #timer: NodeJS.Timeout | undefined
  #heartbeat: NodeJS.Timeout | undefined
  #resync: NodeJS.Timeout | undefined
  #stopped = false

  constructor(options: KubeletOptions) {
    this.#o = options
    this.#core = options.kc.makeApiClient(CoreV1Api)
    this.#volumes = new PodVolumes(this.#core, options.dir)
    this.#policies = new PolicyEnforcer(options.kc, options.network, options.log, () => {
      for (const run of this.#runs.values()) this.#enqueue(run.pod)
    })
  }

  async start(): Promise<void> {
    this.#exec = await startExecServer({
      ...this.#o.tls,
      find: (namespace, name, container) => {
        const run = this.#runs.get(`${namespace}/${name}`)
        const pid = run?.proc?.pid
        if (!run || pid === undefined || !run.env || run.pod.spec?.containers[0]?.name !== container) return undefined
        return { pid, env: run.env }
      },
      log: this.#o.log,
    })
    await this.#registerNode()
    this.#heartbeat = setInterval(() => void this.#registerNode().catch((err) => this.#o.log(`node heartbeat failed: ${err}`)), 10_000)
    const informer = makeInformer<V1Pod>(this.#o.kc, '/api/v1/pods', () => this.#core.listPodForAllNamespaces())
    const on = (pod: V1Pod): void => this.#enqueue(pod)
    informer.on('add', on)
    informer.on('update', on)
    informer.on('delete', (pod) => this.#enqueue(pod, true))
    informer.on('error', (err) => {
      if (this.#stopped) return
      this.#o.log(`pod watch failed (${err}); restarting it`)
      setTimeout(() => void informer.start(), 1_000)
    })
    await informer.start()
    this.#informer = informer
    await this.#policies.start()
    this.#timer = setInterval(() => void this.#tick(), 500)
    this.#resync = setInterval(() => void this.#relist().catch((err) => this.#o.log(`pod resync failed: ${err}`)), RESYNC_MS)
  }

  /**
   * Lists the pods again and syncs each, as a kubelet's periodic sync does: a
   * watch can miss events (the API server restarting under it), and a pod
   * deleted then would never be stopped.
   */
  async #relist(): Promise<void> {
    if (this.#stopped) return
    const pods = await this.#core.listPodForAllNamespaces()
    const seen = new Set<string>()
    for (const pod of pods.items) {
      seen.add(`${pod.metadata?.namespace}/${pod.metadata?.name}`)
      this.#enqueue(pod)
    }
    for (const run of this.#runs.values()) if (!seen.has(run.key)) this.#enqueue(run.pod, true)
  }

  /** Stops every pod process (SIGKILL: the party is being torn down) and cleans up what the pods made. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#timer)
    clearInterval(this.#heartbeat)
    clearInterval(this.#resync)
    await this.#informer?.stop()
    await this.#policies.stop()
    await this.#exec?.close()
    await Promise.all([...this.#runs.values()].map((r) => this.#kill(r, 0)))
    for (const r of this.#runs.values()) await this.#o.network.removePod(r.key)
    await this.#volumes.cleanup()
  }

  /** The pod's process, for tests that signal it (freeze, kill) as a node problem would. */
  process(namespace: string, name: string): ChildProcess | undefined {
    return this.#runs.get(`${namespace}/${name}`)?.proc
  }

  /** The output of the pod's current (or last) container, for a test to say why a process went away. */
  async containerLog(namespace: string, name: string): Promise<string> {
    const run = this.#runs.get(`${namespace}/${name}`)
    if (!run) return `(no pod ${namespace}/${name} on this kubelet)`
    const state = run.proc ? 'running' : `exited ${run.exitCode}`
    // The restart count goes up as a container exits: the one that went away wrote the file before the current count.
    const files = [run.restarts - 1, run.restarts].filter((n) => n >= 0).map((n) => join(this.#o.dir, 'logs', `${namespace}_${name}_${n}.log`))
    const logs = await Promise.all(files.map(async (f) => `${f}:\n${(await readFile(f, 'utf8').catch((err: Error) => err.message)).slice(-4000)}`))
    return `container ${state}, ${run.restarts} restarts; ${logs.join('\n')}`
  }

  podIp(namespace: string, name: string): string | undefined {
    return this.#runs.get(`${namespace}/${name}`)?.net?.ip
  }

  // --- the loop ------------------------------------------------------------------------

  /** Work on one pod at a time, in order (events for one pod never overtake each other). */
  #enqueue(pod: V1Pod, deleted = false): void {
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`
    const previous = this.#queue.get(key) ?? Promise.resolve()
    const next = previous.then(() => (deleted ? this.#forget(key, pod) : this.#sync(key, pod))).catch((err) => this.#o.log(`${key}: ${(err as Error).message}`))
    this.#queue.set(key, next)
    void next.finally(() => {
      if (this.#queue.get(key) === next) this.#queue.delete(key)
    })
  }

  async #sync(key: string, pod: V1Pod): Promise<void> {
    if (this.#stopped) return
    const name = pod.metadata?.name as string
    const namespace = pod.metadata?.namespace as string
    if (!pod.spec?.nodeName) {
      if (pod.metadata?.deletionTimestamp || !this.#o.schedule) return
      // Left Pending, it is looked at again on the next resync.
      const node = await this.#o.schedule(pod)
      if (node) await this.#core.createNamespacedBinding({ namespace, body: { metadata: { name }, target: { apiVersion: 'v1', kind: 'Node', name: node } } })
      return
    }
    if (pod.spec.nodeName !== this.#o.nodeName) return
    let run = this.#runs.get(key)
    if (run && run.uid !== pod.metadata?.uid) {
      // A new pod with the name of an old one (a StatefulSet replaced it): the old one is gone.
      await this.#teardown(run)
      run = undefined
    }
    if (pod.metadata?.deletionTimestamp) {
      if (run && !run.terminating) {
        this.#o.log(`${key}: deleted; stopping its container`)
        await this.#terminate(run, pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30)
      }
      // The kubelet's last word on a pod: the API server removes it once its containers are gone.
      await this.#core
        // With a body, the API server reads the options from it alone (query parameters are ignored).
        .deleteNamespacedPod({ name, namespace, body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata.uid } } })
        .then(() => this.#o.log(`${key}: container stopped; pod removed`))
        .catch((err: { code?: number }) => {
          if (err.code !== 404 && err.code !== 409) throw err
        })
      return
    }
    if (!run) {
      if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return
      run = {
        key,
        uid: pod.metadata?.uid as string,
        pod,
        restarts: 0,
        started: false,
        ready: false,
        terminating: false,
        probes: { startup: newProbe(), readiness: newProbe(), liveness: newProbe() },
        lastStatus: '',
      }
      this.#runs.set(key, run)
      await this.#launch(run)
    } else {
      run.pod = pod
      await this.#policies.enforce(run)
    }
  }

  async #forget(key: string, pod: V1Pod): Promise<void> {
    const run = this.#runs.get(key)
    if (run && run.uid === pod.metadata?.uid) await this.#teardown(run)
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return
    const now = Date.now()
    for (const run of this.#runs.values()) {
      if (run.terminating) continue
      if (!run.proc && run.restartAt !== undefined && now >= run.restartAt) {
        run.restartAt = undefined
        this.#enqueueLaunch(run)
        continue
      }
      if (run.proc) await this.#probe(run, now).catch((err) => this.#o.log(`${run.key}: probe failed to run: ${err}`))
      if (run.proc && now >= (run.volumesSyncedAt ?? 0) + VOLUME_SYNC_MS) {
        run.volumesSyncedAt = now
        await this.#volumes.refresh(run.pod, run.uid)
      }
      await this.#report(run).catch(() => undefined)
    }
  }

  #enqueueLaunch(run: PodRun): void {
    const previous = this.#queue.get(run.key) ?? Promise.resolve()
    const next = previous
      .then(() => (this.#runs.get(run.key) === run && !run.terminating ? this.#launch(run) : undefined))
      .catch((err) => this.#o.log(`${run.key}: ${err}`))
    this.#queue.set(run.key, next)
  }

  // --- running a pod ---------------------------------------------------------------------

  async #launch(run: PodRun): Promise<void> {
    const pod = run.pod
    const namespace = pod.metadata?.namespace as string
    const name = pod.metadata?.name as string
    const container = pod.spec?.containers[0] as V1Container
    if (!container.image?.split(':')[0]?.endsWith('houseparty')) {
      this.#o.log(`${run.key}: image ${container.image} is not one this test kubelet can run`)
      return
    }
    const mounts = await this.#volumes.volumes(pod, run.uid, container)
    if (!mounts) {
      // A claim not bound to a volume yet: try again in a moment.
      run.restartAt = Date.now() + 500
      return
    }
    run.net ??= await this.#o.network.addPod(run.key, namespace)
    const env = await containerEnv(this.#core, this.#o.image, pod, container, run.net.ip)
    run.env = env
    await this.#policies.enforce(run)
    const argv = [...(container.command ?? this.#o.image.entrypoint), ...(container.args ?? (container.command ? [] : this.#o.image.cmd))]
    const hostname = pod.spec?.hostname ?? name
    // A private mount namespace for the volumes and a UTS namespace for the hostname, inside the pod's network namespace.
    const image = this.#o.image
    const script = [
      `mount --bind '${image.source}' '${image.appDir}'`,
      ...mounts.map((m) => `mount --bind '${m.from}' '${m.to}'${m.readOnly ? ` && mount -o remount,bind,ro '${m.to}'` : ''}`),
      'hostname "$HP_HOSTNAME"',
      'exec "$@"',
    ].join(' && ')
    const logDir = join(this.#o.dir, 'logs')
    await mkdir(logDir, { recursive: true })
    const proc = spawn(
      'ip',
      ['netns', 'exec', run.net.ns, 'unshare', '--mount', '--uts', '--propagation', 'private', '--', '/bin/sh', '-c', script, 'sh', ...argv],
      {
        env: { ...env, HP_HOSTNAME: hostname },
        stdio: ['ignore', 'pipe', 'pipe'],
        cwd: '/',
      },
    )
    // A pod made again under its name appends to the same file.
    logOutputTo(proc, join(logDir, `${namespace}_${name}_${run.restarts}.log`))
    run.proc = proc
    run.exitCode = undefined
    run.startedAt = new Date().toISOString()
    run.started = !container.startupProbe
    run.ready = false
    run.probes = { startup: newProbe(), readiness: newProbe(), liveness: newProbe() }
    proc.once('exit', (code, signal) => void this.#exited(run, proc, code ?? (signal ? 128 : 1)))
    await this.#report(run, true)
  }

  async #exited(run: PodRun, proc: ChildProcess, code: number): Promise<void> {
    if (run.proc !== proc) return
    run.proc = undefined
    run.exitCode = code
    run.ready = false
    if (run.terminating || this.#stopped) return
    const policy = run.pod.spec?.restartPolicy ?? 'Always'
    if (policy === 'Always' || (policy === 'OnFailure' && code !== 0)) {
      run.restarts++
      // Crash-loop backoff, kept short for tests: 1 s, 2 s, 4 s … at most 30 s.
      run.restartAt = Date.now() + Math.min(30_000, 1_000 * 2 ** Math.min(run.restarts - 1, 5))
      this.#o.log(`${run.key}: container exited ${code}; restart ${run.restarts}`)
    } else await this.#o.network.removePod(run.key)
    await this.#report(run, true).catch(() => undefined)
  }

  /** SIGTERM, then SIGKILL once the grace period is over. */
  async #terminate(run: PodRun, graceSeconds: number): Promise<void> {
    run.terminating = true
    await this.#kill(run, graceSeconds * 1000)
    await this.#o.network.removePod(run.key)
  }

  async #kill(run: PodRun, graceMs: number): Promise<void> {
    const proc = run.proc
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
    await new Promise<void>((done) => {
      const hard = setTimeout(() => proc.kill('SIGKILL'), Math.max(0, graceMs))
      proc.once('exit', () => {
        clearTimeout(hard)
        done()
      })
      proc.kill('SIGCONT') // a frozen process cannot take SIGTERM
      proc.kill(graceMs > 0 ? 'SIGTERM' : 'SIGKILL')
    })
  }

  async #teardown(run: PodRun): Promise<void> {
    run.terminating = true
    await this.#kill(run, 0)
    await this.#o.network.removePod(run.key)
    await rm(join(this.#o.dir, 'pods', run.uid), { recursive: true, force: true })
    this.#runs.delete(run.key)
  }

  // --- what a container sees ---------------------------------------------------------------

  // --- probes and status ---------------------------------------------------------------------

  async #probe(run: PodRun, now: number): Promise<void> {
    const c = run.pod.spec?.containers[0] as V1Container
    const ip = run.net?.ip
    if (!ip) return
    const check = async (spec: V1Probe | undefined, state: Probe): Promise<boolean | undefined> => {
      if (!spec || now < state.nextAt) return undefined
      state.nextAt = now + (spec.periodSeconds ?? 10) * 1000
      const ok = await httpProbe(this.#o.agentSocket, ip, c, spec)
      if (ok) {
        state.successes++
        state.failures = 0
      } else {
        state.failures++
        state.successes = 0
      }
      return ok
    }
    if (!run.started) {
      await check(c.startupProbe, run.probes.startup)
      if (run.probes.startup.successes >= 1) run.started = true
      else if (run.probes.startup.failures >= (c.startupProbe?.failureThreshold ?? 3)) return this.#restart(run, 'startup probe failed')
      return
    }
    await check(c.livenessProbe, run.probes.liveness)
    if (c.livenessProbe && run.probes.liveness.failures >= (c.livenessProbe.failureThreshold ?? 3)) return this.#restart(run, 'liveness probe failed')
    if (!c.readinessProbe) run.ready = true
    else {
      const ok = await check(c.readinessProbe, run.probes.readiness)
      if (ok === true && run.probes.readiness.successes >= (c.readinessProbe.successThreshold ?? 1)) run.ready = true
      if (ok === false && run.probes.readiness.failures >= (c.readinessProbe.failureThreshold ?? 3)) run.ready = false
    }
  }

  async #restart(run: PodRun, why: string): Promise<void> {
    this.#o.log(`${run.key}: ${why}; restarting the container`)
    await this.#kill(run, (run.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000)
  }

  async #report(run: PodRun, force = false): Promise<void> {
    const pod = run.pod
    const status = podStatus({ ...run, running: run.proc !== undefined })
    const ready = status.containerStatuses[0]?.ready === true
    const fingerprint = JSON.stringify(status)
    // Someone else changed it (the node lifecycle controller marks pods not ready when node heartbeats stopped,
    // e.g. while the API server restarted): write ours again, as a kubelet's status sync does.
    const apiReady = pod.status?.conditions?.find((x) => x.type === 'Ready')?.status === 'True'
    if (!force && fingerprint === run.lastStatus && apiReady === ready) return
    const now = new Date().toISOString()
    for (const cond of status.conditions) (cond as Record<string, string>).lastTransitionTime = now
    await this.#core.patchNamespacedPodStatus(
      { name: pod.metadata?.name as string, namespace: pod.metadata?.namespace as string, body: { status } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
    // Only once the API server has it: a write that failed (the API server restarting) is made again next tick.
    run.lastStatus = fingerprint
  }

  async #registerNode(): Promise<void> {
    const status = nodeStatus(this.#exec?.port ?? 0, new Date().toISOString())
    try {
      await this.#core.readNode({ name: this.#o.nodeName })
    } catch {
      await this.#core.createNode({
        body: { metadata: { name: this.#o.nodeName, labels: { ...this.#o.labels, 'kubernetes.io/hostname': this.#o.nodeName, 'kubernetes.io/os': 'linux' } } },
      })
    }
    await this.#core.patchNodeStatus({ name: this.#o.nodeName, body: { status } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))
  }
}
