import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { appendFile, mkdtemp, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { connect, createServer as createNetServer, type Server as NetServer } from 'node:net'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node'
import { logOutputTo } from '../../../src/shared/process-log.ts'
import { k8sTool } from '../../helpers/helm.ts'
import { ControlPlane, controlPlaneBinaries } from './control-plane.ts'
import { housepartyImage } from './image.ts'
import { TestKubelet } from './kubelet.ts'
import { API_PORT_ON_BRIDGE, BRIDGE_IP, PodNetwork, removeNamespaces } from './netns.ts'
import { ClusterDns, VolumeProvisioner } from './services.ts'

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE'])

const run = promisify(execFile)
const ROOT = resolve(import.meta.dirname, '../../..')

/** Why this machine cannot run the cluster tests, or false if it can. */
export async function clusterUnavailable(): Promise<string | false> {
  if (process.platform !== 'linux') return 'the test cluster needs Linux network namespaces'
  if (process.getuid?.() !== 0) return 'the test cluster needs root (network namespaces, bind mounts); CI runs as root'
  for (const bin of ['ip', 'unshare', 'dnsmasq', 'iptables', 'etcd', 'openssl']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} is missing (test/e2e/cluster/control-plane.sh deps installs it)`
  }
  if (!(await controlPlaneBinaries())) return 'kube-apiserver is not built (test/e2e/cluster/control-plane.sh build; .ci/run does it)'
  if (!existsSync(join(ROOT, 'dist/cli/main.js'))) return 'dist/ is not built (npm run build)'
  return false
}

/** A node of the test cluster: its name and labels (e.g. its zone). */
export interface TestNode {
  name: string
  labels?: Record<string, string>
}

export interface ClusterOptions {
  /** Default: one node, houseparty-test-node. */
  nodes?: TestNode[]
  /** Where a pod goes (there is no kube-scheduler: the test assigns nodes). Default: the first node. */
  assign?: (pod: V1Pod) => string
}

export interface InClusterRequest {
  method?: string
  body?: Buffer
  timeoutMs?: number
  headers?: Record<string, string>
  /** PEM CA that an https URL's certificate must chain to. */
  ca?: string
}

export interface InClusterResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/**
 * A Kubernetes cluster on this machine for end-to-end tests (test
 * infrastructure): the control plane (control-plane.ts), a bridge and a
 * network namespace per pod (netns.ts), cluster DNS and volume provisioning
 * (services.ts), a test kubelet per node (kubelet.ts; one node unless asked
 * for more, pods bound where the test assigns them), and an agent in the bridge
 * namespace through which the tests reach pods and Services. stop() removes
 * every process, namespace and file it made, even after a failure.
 */
export class LocalCluster {
  readonly dir: string
  readonly network: PodNetwork
  readonly controlPlane: ControlPlane
  readonly kubelets: TestKubelet[] = []
  readonly #options: ClusterOptions
  #dns: ClusterDns | undefined
  #provisioner: VolumeProvisioner | undefined
  #agent: ChildProcess | undefined
  #apiBridge: NetServer | undefined
  #onSignal: ((signal: NodeJS.Signals) => void) | undefined
  readonly agentSocket: string

  private constructor(dir: string, bin: string, options: ClusterOptions) {
    this.#options = options
    this.dir = dir
    this.network = new PodNetwork(randomBytes(2).toString('hex'))
    this.controlPlane = new ControlPlane(join(dir, 'control-plane'), bin)
    this.agentSocket = join(dir, 'agent.sock')
  }

  static async start(options: ClusterOptions = {}): Promise<LocalCluster> {
    const bin = await controlPlaneBinaries()
    if (!bin) throw new Error('the control plane is not built')
    // Not under /tmp: pods mount an emptyDir there, which would hide this directory (and the `node` on their PATH) from them.
    const cluster = new LocalCluster(await mkdtemp(join(process.env.HOUSEPARTY_CLUSTER_DIR ?? '/var/tmp', 'houseparty-cluster-')), bin, options)
    // A run interrupted (Ctrl-C, a CI timeout) still takes everything down: namespaces outlive their processes.
    const onSignal = (signal: NodeJS.Signals): void => {
      void cluster.stop().finally(() => process.kill(process.pid, signal))
    }
    cluster.#onSignal = onSignal
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    try {
      await cluster.#start()
    } catch (err) {
      await cluster.stop()
      throw err
    }
    return cluster
  }

  /** The first node's kubelet (the only one, unless the cluster has several nodes). */
  get kubelet(): TestKubelet | undefined {
    return this.kubelets[0]
  }

  get kubeconfig(): string {
    return this.controlPlane.kubeconfig
  }

  async #start(): Promise<void> {
    const log = (line: string): void => void appendFile(join(this.dir, 'harness.log'), `${new Date().toISOString()} ${line}\n`)
    await this.controlPlane.start()
    await this.network.up()
    await this.#startAgent()
    const kc = this.controlPlane.client()
    this.#dns = new ClusterDns(kc, join(this.dir, 'dns'), this.network.bridgeNs)
    await this.#dns.start()
    this.#provisioner = new VolumeProvisioner(kc, join(this.dir, 'volumes'), log)
    await this.#provisioner.start()
    const image = await housepartyImage(join(this.dir, 'bin'), join(this.dir, 'app'))
    const nodes = this.#options.nodes ?? [{ name: 'houseparty-test-node' }]
    const first = (nodes[0] as TestNode).name
    const assign = this.#options.assign ?? (() => first)
    const core = kc.makeApiClient(CoreV1Api)
    // What a scheduler would decide, decided by the test; a cordoned node takes no pod (it stays Pending).
    const schedule = async (pod: V1Pod): Promise<string | undefined> => {
      const name = assign(pod)
      return (await core.readNode({ name })).spec?.unschedulable ? undefined : name
    }
    for (const [i, node] of nodes.entries()) {
      const kubelet = new TestKubelet({
        kc,
        network: this.network,
        dir: join(this.dir, nodes.length === 1 ? 'kubelet' : `kubelet-${node.name}`),
        agentSocket: this.agentSocket,
        nodeName: node.name,
        ...(node.labels ? { labels: node.labels } : {}),
        ...(i === 0 ? { schedule } : {}),
        tls: this.controlPlane.kubeletTls(),
        image,
        log: nodes.length === 1 ? log : (line) => log(`[${node.name}] ${line}`),
      })
      this.kubelets.push(kubelet)
      await kubelet.start()
    }
  }

  async #startAgent(): Promise<void> {
    // The machine's side of pods' way to the API server: a unix socket (namespaces do not matter to it) on to loopback.
    const apiSocket = join(this.dir, 'api.sock')
    const apiPort = this.controlPlane.apiPort
    this.#apiBridge = createNetServer((conn) => {
      const upstream = connect(apiPort, '127.0.0.1')
      conn.pipe(upstream).pipe(conn)
      conn.on('error', () => upstream.destroy())
      upstream.on('error', () => conn.destroy())
    })
    await new Promise<void>((ok) => this.#apiBridge?.listen(apiSocket, ok))
    const args = [resolve(import.meta.dirname, 'agent.ts'), this.agentSocket, apiSocket, `${BRIDGE_IP}:${API_PORT_ON_BRIDGE}`]
    const agent = spawn('ip', ['netns', 'exec', this.network.bridgeNs, process.execPath, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    logOutputTo(agent, join(this.dir, 'agent.log'))
    this.#agent = agent
    await new Promise<void>((ok, fail) => {
      agent.stdout?.once('data', () => ok())
      agent.once('exit', (code) => fail(new Error(`the agent exited ${code}`)))
    })
  }

  /** Stops everything and removes what it made: processes, network namespaces, files. */
  async stop(): Promise<void> {
    if (this.#onSignal) {
      process.off('SIGINT', this.#onSignal)
      process.off('SIGTERM', this.#onSignal)
      this.#onSignal = undefined
    }
    for (const kubelet of this.kubelets) await kubelet.stop().catch(() => undefined)
    await this.#provisioner?.stop().catch(() => undefined)
    await this.#dns?.stop().catch(() => undefined)
    this.#agent?.kill('SIGTERM')
    this.#apiBridge?.close()
    await this.controlPlane.stop().catch(() => undefined)
    await this.network.down().catch(() => undefined)
    await removeNamespaces(this.network.prefix)
    if (!process.env.HOUSEPARTY_KEEP_TEST_DIRS) await rm(this.dir, { recursive: true, force: true })
  }

  /** What this cluster left on the machine after stop(): namespaces or processes (the tests check it is nothing). */
  async leftovers(): Promise<string[]> {
    const out: string[] = []
    const { stdout } = await run('ip', ['netns', 'list'])
    for (const line of stdout.split('\n')) if (line.startsWith(this.network.prefix)) out.push(`network namespace ${line.split(' ')[0]}`)
    const ps = await run('ps', ['-eo', 'pid,args'])
    for (const line of ps.stdout.split('\n')) if (line.includes(this.dir) && !line.includes('ps -eo')) out.push(`process ${line.trim()}`)
    if (existsSync(this.dir) && !process.env.HOUSEPARTY_KEEP_TEST_DIRS) out.push(`directory ${this.dir}`)
    return out
  }

  env(): NodeJS.ProcessEnv {
    const helmHome = join(this.dir, 'helm')
    return { ...process.env, KUBECONFIG: this.kubeconfig, HELM_CACHE_HOME: helmHome, HELM_CONFIG_HOME: helmHome, HELM_DATA_HOME: helmHome }
  }

  async kubectl(...args: string[]): Promise<string> {
    return (await run(await k8sTool('kubectl'), args, { env: this.env(), maxBuffer: 64 * 1024 * 1024 })).stdout
  }

  async helm(...args: string[]): Promise<string> {
    return (await run(await k8sTool('helm'), args, { env: this.env(), maxBuffer: 64 * 1024 * 1024, timeout: 20 * 60_000 })).stdout
  }

  /**
   * Runs a client program where the cluster's network is (the bridge namespace, whose resolv.conf is the cluster's
   * DNS), as a user's pod would run it: it reaches Services by name. `env` is all of its environment.
   */
  async runInCluster(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
    try {
      return await run('ip', ['netns', 'exec', this.network.bridgeNs, file, ...args], { env, maxBuffer: 64 * 1024 * 1024, timeout: 20 * 60_000 })
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string }
      throw new Error(`${file} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`)
    }
  }

  /** The addresses cluster DNS answers for `host` now (for a Service's name: its ready endpoints). */
  async resolve(host: string): Promise<string[]> {
    return (await this.#dns?.addressesOf(host)) ?? []
  }

  /** An HTTP(S) request to a pod or Service inside the cluster (by IP or cluster DNS name), through the agent; an https URL's certificate is checked against `ca` (PEM). */
  fetch(url: string, init: InClusterRequest = {}): Promise<InClusterResponse> {
    const timeoutMs = init.timeoutMs ?? 60_000
    const method = init.method ?? 'GET'
    const attempt = (fresh: boolean): Promise<InClusterResponse> =>
      new Promise((ok, fail) => {
        const req = request(
          {
            socketPath: this.agentSocket,
            path: url,
            method,
            headers: {
              ...init.headers,
              'x-agent-timeout-ms': String(timeoutMs),
              ...(init.body ? { 'content-length': String(init.body.length) } : {}),
              ...(init.ca ? { 'x-agent-ca': Buffer.from(init.ca).toString('base64') } : {}),
            },
            timeout: timeoutMs + 1_000,
            ...(fresh ? { agent: false } : {}),
          },
          (res) => {
            const chunks: Buffer[] = []
            res.on('data', (c: Buffer) => chunks.push(c))
            res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
            res.on('error', fail)
          },
        )
        req.on('timeout', () => req.destroy(new Error(`${url}: no answer within ${timeoutMs} ms`)))
        req.on('error', (err) => {
          // The agent closed a kept-alive connection just as this request went out (its keep-alive timeout ran out
          // while this process was slow): it never arrived, so an idempotent request (RFC 9110: GET, HEAD, PUT,
          // DELETE; the body is at hand) goes once more on a new connection, as HTTP clients do.
          if (!fresh && IDEMPOTENT.has(method) && req.reusedSocket) attempt(true).then(ok, fail)
          else fail(err)
        })
        req.end(init.body)
      })
    return attempt(false)
  }
}
