import { execFile } from 'node:child_process'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { promisify } from 'node:util'

const run = promisify(execFile)

/**
 * The test cluster's network (test infrastructure): a bridge in a network
 * namespace of its own, and one namespace per pod joined to it by a veth
 * pair. Every address lives inside namespaces made here; nothing is created
 * in, or sent from, the machine's own namespace. Pods get 10.244.0.2 and up;
 * the bridge is 10.244.0.1, where dnsmasq answers cluster DNS.
 */
export const BRIDGE_IP = '10.244.0.1'
/** Where pods reach the API server: the agent, on the bridge, forwards it to the one on the machine's loopback. */
export const API_PORT_ON_BRIDGE = 443
const PREFIX = 24
const SUBNET = '10.244.0'

async function ip(...args: string[]): Promise<void> {
  await run('ip', args)
}

export class PodNetwork {
  /** Namespace names start with this, so a crashed run's leftovers can be found and removed. */
  readonly prefix: string
  readonly bridgeNs: string
  readonly #used = new Set<number>()
  readonly #pods = new Map<string, { ns: string; ip: string; host: string }>()

  constructor(runId: string) {
    this.prefix = `hpk${runId}`
    this.bridgeNs = `${this.prefix}-br`
  }

  async up(): Promise<void> {
    await ip('netns', 'add', this.bridgeNs)
    await ip('-n', this.bridgeNs, 'link', 'set', 'lo', 'up')
    await ip('-n', this.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge')
    await ip('-n', this.bridgeNs, 'addr', 'add', `${BRIDGE_IP}/${PREFIX}`, 'dev', 'br0')
    await ip('-n', this.bridgeNs, 'link', 'set', 'br0', 'up')
    await this.#resolvConf(this.bridgeNs, 'default')
  }

  /** Makes a namespace for a pod, with an address on the bridge and DNS for its Kubernetes namespace. Returns its name and IP. */
  async addPod(key: string, k8sNamespace: string): Promise<{ ns: string; ip: string }> {
    const existing = this.#pods.get(key)
    if (existing) return existing
    let n = 2
    while (this.#used.has(n)) n++
    if (n > 254) throw new Error('the test cluster ran out of pod addresses')
    this.#used.add(n)
    const ns = `${this.prefix}-p${n}`
    const host = `v${this.prefix.slice(3)}p${n}`.slice(0, 15)
    const podIp = `${SUBNET}.${n}`
    await ip('netns', 'add', ns)
    await ip('-n', ns, 'link', 'set', 'lo', 'up')
    // Made inside the bridge's namespace, its peer straight into the pod's: never in the machine's own.
    await ip('-n', this.bridgeNs, 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
    await ip('-n', this.bridgeNs, 'link', 'set', host, 'master', 'br0')
    await ip('-n', this.bridgeNs, 'link', 'set', host, 'up')
    await ip('-n', ns, 'addr', 'add', `${podIp}/${PREFIX}`, 'dev', 'eth0')
    await ip('-n', ns, 'link', 'set', 'eth0', 'up')
    await ip('-n', ns, 'route', 'add', 'default', 'via', BRIDGE_IP)
    await this.#resolvConf(ns, k8sNamespace)
    const pod = { ns, ip: podIp, host }
    this.#pods.set(key, pod)
    return pod
  }

  async removePod(key: string): Promise<void> {
    const pod = this.#pods.get(key)
    if (!pod) return
    this.#pods.delete(key)
    await run('ip', ['-n', this.bridgeNs, 'link', 'del', pod.host]).catch(() => undefined)
    await run('ip', ['netns', 'del', pod.ns]).catch(() => undefined)
    await rm(`/etc/netns/${pod.ns}`, { recursive: true, force: true })
    this.#used.delete(Number(pod.ip.split('.').at(-1)))
  }

  /** Cuts a pod off (everything but loopback dropped, both ways) or lets it talk again. */
  async partition(key: string, cut: boolean): Promise<void> {
    const pod = this.#pods.get(key)
    if (!pod) throw new Error(`no pod network ${key}`)
    const rules = cut ? ['-A'] : ['-D']
    for (const op of rules) {
      for (const chain of ['INPUT', 'OUTPUT']) {
        await run('ip', ['netns', 'exec', pod.ns, 'iptables', op, chain, '!', chain === 'INPUT' ? '-i' : '-o', 'lo', '-j', 'DROP'])
      }
    }
  }

  /**
   * Enforces a deny-all NetworkPolicy on a pod, per direction: nothing in
   * (ingress) or out (egress) but loopback and the node (the bridge address:
   * kubelet probes and their answers, which network plugins let through to a
   * node's own pods). Idempotent: each call sets both directions afresh.
   */
  async isolate(key: string, deny: { ingress: boolean; egress: boolean }): Promise<void> {
    const pod = this.#pods.get(key)
    if (!pod) return
    const ipt = (...args: string[]): Promise<unknown> => run('ip', ['netns', 'exec', pod.ns, 'iptables', '-w', ...args])
    const directions = [
      { chain: 'HP-POLICY-IN', hook: 'INPUT', iface: '-i', peer: '-s', on: deny.ingress },
      { chain: 'HP-POLICY-OUT', hook: 'OUTPUT', iface: '-o', peer: '-d', on: deny.egress },
    ]
    for (const d of directions) {
      await ipt('-N', d.chain).catch(() => undefined)
      await ipt('-F', d.chain)
      await ipt('-C', d.hook, '-j', d.chain).catch(() => ipt('-A', d.hook, '-j', d.chain))
      if (!d.on) continue
      await ipt('-A', d.chain, d.iface, 'lo', '-j', 'RETURN')
      await ipt('-A', d.chain, d.peer, BRIDGE_IP, '-j', 'RETURN')
      await ipt('-A', d.chain, '-j', 'DROP')
    }
  }

  async down(): Promise<void> {
    for (const key of [...this.#pods.keys()]) await this.removePod(key)
    await removeNamespaces(this.prefix)
  }

  /** `ip netns exec`'s resolv.conf for a namespace: cluster DNS, with the search path a pod in `k8sNamespace` has. */
  async #resolvConf(ns: string, k8sNamespace: string): Promise<void> {
    await mkdir(`/etc/netns/${ns}`, { recursive: true })
    await writeFile(
      `/etc/netns/${ns}/resolv.conf`,
      `nameserver ${BRIDGE_IP}\nsearch ${k8sNamespace}.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n`,
    )
  }
}

/** Removes every namespace (and its /etc/netns files) whose name starts with `prefix`: also what a crashed run left. */
export async function removeNamespaces(prefix: string): Promise<void> {
  const { stdout } = await run('ip', ['netns', 'list']).catch(() => ({ stdout: '' }))
  for (const line of stdout.split('\n')) {
    const name = line.split(' ')[0] ?? ''
    if (!name.startsWith(prefix)) continue
    await run('ip', ['netns', 'del', name]).catch(() => undefined)
    await rm(`/etc/netns/${name}`, { recursive: true, force: true })
  }
}
