import { type KubeConfig, makeInformer, NetworkingV1Api, type V1LabelSelector, type V1NetworkPolicy, type V1Pod } from '@kubernetes/client-node'
import type { PodNetwork } from './netns.ts'

/** A pod as the enforcer sees it: its key, spec, network namespace, and the isolation last applied. */
export interface Isolated {
  key: string
  pod: V1Pod
  net?: { ns: string; ip: string }
  /** The NetworkPolicy isolation last applied to its namespace, as JSON. */
  isolation?: string
}

/**
 * NetworkPolicies for the test kubelet (test infrastructure): deny-all
 * isolation (a policy selecting a pod with no rules for a direction) is
 * enforced on the pod's network namespace; policies with rules are logged
 * and not enforced.
 */
export class PolicyEnforcer {
  readonly #kc: KubeConfig
  readonly #network: PodNetwork
  readonly #log: (line: string) => void
  readonly #changed: () => void
  readonly #policies = new Map<string, V1NetworkPolicy>()
  #informer: ReturnType<typeof makeInformer<V1NetworkPolicy>> | undefined
  #stopped = false

  /** `changed` runs whenever a policy is added, changed or deleted: the kubelet enforces again on every pod. */
  constructor(kc: KubeConfig, network: PodNetwork, log: (line: string) => void, changed: () => void) {
    this.#kc = kc
    this.#network = network
    this.#log = log
    this.#changed = changed
  }

  async start(): Promise<void> {
    const api = this.#kc.makeApiClient(NetworkingV1Api)
    const informer = makeInformer<V1NetworkPolicy>(this.#kc, '/apis/networking.k8s.io/v1/networkpolicies', () => api.listNetworkPolicyForAllNamespaces())
    const key = (p: V1NetworkPolicy): string => `${p.metadata?.namespace}/${p.metadata?.name}`
    const changed = (): void => this.#changed()
    informer.on('add', (p) => {
      this.#policies.set(key(p), p)
      changed()
    })
    informer.on('update', (p) => {
      this.#policies.set(key(p), p)
      changed()
    })
    informer.on('delete', (p) => {
      this.#policies.delete(key(p))
      changed()
    })
    informer.on('error', (err) => {
      if (this.#stopped) return
      this.#log(`network policy watch failed (${err}); restarting it`)
      setTimeout(() => void informer.start(), 1_000)
    })
    await informer.start()
    this.#informer = informer
  }

  /** Applies the deny-all isolation the policies selecting this pod ask for, when it changed. */
  async enforce(run: Isolated): Promise<void> {
    if (!run.net) return
    const pod = run.pod
    const deny = { ingress: false, egress: false }
    const ruled = { ingress: false, egress: false }
    for (const p of this.#policies.values()) {
      if (p.metadata?.namespace !== pod.metadata?.namespace || !selects(p.spec?.podSelector, pod.metadata?.labels ?? {})) continue
      const types = p.spec?.policyTypes ?? ['Ingress', ...(p.spec?.egress ? ['Egress'] : [])]
      for (const [type, dir] of [
        ['Ingress', 'ingress'],
        ['Egress', 'egress'],
      ] as const) {
        if (!types.includes(type)) continue
        deny[dir] = true
        if ((p.spec?.[dir] ?? []).length > 0) ruled[dir] = true
      }
    }
    for (const dir of ['ingress', 'egress'] as const) {
      if (ruled[dir]) this.#log(`${run.key}: ${dir} NetworkPolicy rules are not enforced by the test kubelet (only deny-all)`)
      if (ruled[dir]) deny[dir] = false
    }
    const fingerprint = JSON.stringify(deny)
    if (fingerprint === (run.isolation ?? JSON.stringify({ ingress: false, egress: false }))) return
    await this.#network.isolate(run.key, deny)
    run.isolation = fingerprint
    this.#log(`${run.key}: network policy now denies ingress ${deny.ingress}, egress ${deny.egress}`)
  }

  async stop(): Promise<void> {
    this.#stopped = true
    await this.#informer?.stop()
  }
}

/** Whether a label selector (matchLabels and matchExpressions) selects these labels; an empty selector selects all. */
function selects(selector: V1LabelSelector | undefined, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector?.matchLabels ?? {})) if (labels[k] !== v) return false
  for (const e of selector?.matchExpressions ?? []) {
    const has = e.key in labels
    const value = labels[e.key] as string
    const ok =
      e.operator === 'In'
        ? has && (e.values ?? []).includes(value)
        : e.operator === 'NotIn'
          ? !has || !(e.values ?? []).includes(value)
          : e.operator === 'Exists'
            ? has
            : e.operator === 'DoesNotExist'
              ? !has
              : false
    if (!ok) return false
  }
  return true
}
