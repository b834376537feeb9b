import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node'
import { logOutputTo } from '../../../src/shared/process-log.ts'
import { waitFor } from '../../helpers/wait.ts'
import { BRIDGE_IP } from './netns.ts'

const run = promisify(execFile)
const SCRIPT = resolve(import.meta.dirname, 'control-plane.sh')

/** Where `control-plane.sh build` put kube-apiserver and kube-controller-manager, or undefined when not built. */
export async function controlPlaneBinaries(): Promise<string | undefined> {
  const { stdout } = await run('bash', [SCRIPT, 'path']).catch(() => ({ stdout: '' }))
  return stdout.trim() || undefined
}

async function freePort(): Promise<number> {
  return new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => ok(port))
    })
  })
}

async function openssl(...args: string[]): Promise<void> {
  await run('openssl', args)
}

/**
 * A real Kubernetes control plane on loopback (test infrastructure): etcd
 * 3.4 from Debian, kube-apiserver and kube-controller-manager v1.20.2 built
 * from Debian's source package. TLS everywhere with a throwaway CA, RBAC on,
 * a service-account key; the admin kubeconfig it writes serves helm,
 * kubectl, the test kubelet and the operator. Each component logs to its
 * own file in `dir`; stop() kills them all.
 */
export class ControlPlane {
  readonly dir: string
  readonly kubeconfig: string
  readonly #bin: string
  readonly #procs: { name: string; bin: string; args: string[]; proc: ChildProcess }[] = []
  /** etcd's data, in memory where the machine has /dev/shm: removed by stop(). */
  #etcdDir: string | undefined
  apiPort = 0

  constructor(dir: string, bin: string) {
    this.dir = dir
    this.kubeconfig = join(dir, 'admin.kubeconfig')
    this.#bin = bin
  }

  async start(): Promise<void> {
    const pki = join(this.dir, 'pki')
    await mkdir(pki, { recursive: true })
    await this.#certificates(pki)
    const [etcdClient, etcdPeer, api] = await Promise.all([freePort(), freePort(), freePort()])
    this.apiPort = api
    // etcd syncs its log on every write. In `npm test` two other lanes' peers sync their own on the same disk, and the
    // cluster tests wait on the API server, which waits on etcd: a throwaway control plane needs no durable store.
    this.#etcdDir = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : this.dir, 'houseparty-etcd-'))
    this.#spawn('etcd', 'etcd', [
      `--data-dir=${this.#etcdDir}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
    ])
    this.#spawn('kube-apiserver', join(this.#bin, 'kube-apiserver'), [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${api}`,
      '--insecure-port=0',
      `--tls-cert-file=${join(pki, 'apiserver.crt')}`,
      `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
      `--client-ca-file=${join(pki, 'ca.crt')}`,
      `--service-account-key-file=${join(pki, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      '--service-cluster-ip-range=10.96.0.0/16',
      '--authorization-mode=RBAC',
      // exec and logs go to the kubelet: verified against the cluster CA, at the node's ExternalIP (loopback, see kubelet.ts).
      `--kubelet-certificate-authority=${join(pki, 'ca.crt')}`,
      `--kubelet-client-certificate=${join(pki, 'apiserver-kubelet-client.crt')}`,
      `--kubelet-client-key=${join(pki, 'apiserver-kubelet-client.key')}`,
      '--kubelet-preferred-address-types=ExternalIP',
      '--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,ResourceQuota,StorageObjectInUseProtection',
      '--allow-privileged=true',
      '--profiling=false',
      `--cert-dir=${join(pki, 'generated')}`,
    ])
    await this.#kubeconfig(pki)
    const core = this.client().makeApiClient(CoreV1Api)
    await waitFor('kube-apiserver to answer', async () => (await core.listNamespace()).items.length > 0, { timeoutMs: 90_000, intervalMs: 500 })
    this.#spawn('kube-controller-manager', join(this.#bin, 'kube-controller-manager'), [
      `--kubeconfig=${this.kubeconfig}`,
      `--authentication-kubeconfig=${this.kubeconfig}`,
      `--authorization-kubeconfig=${this.kubeconfig}`,
      '--bind-address=127.0.0.1',
      '--port=0',
      `--secure-port=${await freePort()}`,
      '--leader-elect=false',
      `--service-account-private-key-file=${join(pki, 'sa.key')}`,
      `--root-ca-file=${join(pki, 'ca.crt')}`,
      '--use-service-account-credentials=false',
      '--controllers=*,-nodeipam,-cloud-node-lifecycle,-service,-route,-attachdetach,-ttl-after-finished',
      '--concurrent-statefulset-syncs=5',
    ])
    // The controller-manager is up once it has made the default ServiceAccount of "default".
    await waitFor(
      'kube-controller-manager to make the default ServiceAccount',
      async () => {
        await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' })
        return true
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    )
  }

  /** The test kubelet's serving certificate, signed by the cluster CA. */
  kubeletTls(): { cert: string; key: string } {
    return { cert: join(this.dir, 'pki', 'kubelet.crt'), key: join(this.dir, 'pki', 'kubelet.key') }
  }

  client(): KubeConfig {
    const kc = new KubeConfig()
    kc.loadFromFile(this.kubeconfig)
    return kc
  }

  /** Stops every component (SIGTERM, then SIGKILL) and waits for them to exit. */
  async stop(): Promise<void> {
    await Promise.all(
      [...this.#procs].reverse().map(
        ({ proc }) =>
          new Promise<void>((done) => {
            if (proc.exitCode !== null || proc.signalCode !== null) return done()
            const kill = setTimeout(() => proc.kill('SIGKILL'), 5_000)
            proc.once('exit', () => {
              clearTimeout(kill)
              done()
            })
            proc.kill('SIGTERM')
          }),
      ),
    )
    if (this.#etcdDir) await rm(this.#etcdDir, { recursive: true, force: true })
  }

  /** A component that exited (a crash makes every wait fail fast with its log's name). */
  exited(): string | undefined {
    return this.#procs.find(({ proc }) => proc.exitCode !== null || proc.signalCode !== null)?.name
  }

  #spawn(name: string, bin: string, args: string[]): void {
    const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    logOutputTo(proc, join(this.dir, `${name}.log`))
    const at = this.#procs.findIndex((p) => p.name === name)
    if (at >= 0) this.#procs[at] = { name, bin, args, proc }
    else this.#procs.push({ name, bin, args, proc })
  }

  /** Stops one component (SIGTERM, SIGKILL after 5 s) and starts it again with the same flags, as an upgrade or a crash loop would; waits until the API answers. */
  async restart(name: 'kube-apiserver' | 'kube-controller-manager'): Promise<void> {
    const entry = this.#procs.find((p) => p.name === name)
    if (!entry) throw new Error(`no ${name} to restart`)
    await new Promise<void>((ok) => {
      // A stopping kube-apiserver waits up to its request timeout (a minute) for requests in flight; the test is
      // about clients living through the restart, not about that wait, so a few seconds on it is SIGKILLed.
      const kill = setTimeout(() => entry.proc.kill('SIGKILL'), 5_000)
      entry.proc.once('exit', () => {
        clearTimeout(kill)
        ok()
      })
      entry.proc.kill('SIGTERM')
    })
    this.#spawn(name, entry.bin, entry.args)
    const core = this.client().makeApiClient(CoreV1Api)
    await waitFor('kube-apiserver to answer again', async () => (await core.listNamespace()).items.length > 0, { timeoutMs: 90_000, intervalMs: 500 })
  }

  async #certificates(pki: string): Promise<void> {
    const p = (f: string): string => join(pki, f)
    await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj', '/CN=houseparty-test-ca')
    const sign = async (name: string, subject: string, ext: string): Promise<void> => {
      await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', subject)
      await writeFile(p(`${name}.ext`), ext)
      await openssl(
        'x509',
        '-req',
        '-in',
        p(`${name}.csr`),
        '-CA',
        p('ca.crt'),
        '-CAkey',
        p('ca.key'),
        '-CAcreateserial',
        '-out',
        p(`${name}.crt`),
        '-days',
        '2',
        '-extfile',
        p(`${name}.ext`),
      )
    }
    await sign(
      'apiserver',
      '/CN=kube-apiserver',
      `subjectAltName=IP:127.0.0.1,IP:10.96.0.1,IP:${BRIDGE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n`,
    )
    await sign('admin', '/O=system:masters/CN=houseparty-test-admin', 'extendedKeyUsage=clientAuth\n')
    // The test kubelet's exec endpoint, on loopback, and the API server's identity when it calls it.
    await sign('kubelet', '/CN=houseparty-test-kubelet', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
    await sign('apiserver-kubelet-client', '/O=system:masters/CN=kube-apiserver-kubelet-client', 'extendedKeyUsage=clientAuth\n')
    await openssl('genrsa', '-out', p('sa.key'), '2048')
    await openssl('rsa', '-in', p('sa.key'), '-pubout', '-out', p('sa.pub'))
  }

  async #kubeconfig(pki: string): Promise<void> {
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'houseparty-test', cluster: { server: `https://127.0.0.1:${this.apiPort}`, 'certificate-authority': join(pki, 'ca.crt') } }],
      users: [{ name: 'admin', user: { 'client-certificate': join(pki, 'admin.crt'), 'client-key': join(pki, 'admin.key') } }],
      contexts: [{ name: 'houseparty-test', context: { cluster: 'houseparty-test', user: 'admin', namespace: 'default' } }],
      'current-context': 'houseparty-test',
    }
    await writeFile(this.kubeconfig, JSON.stringify(config, null, 2))
  }
}
