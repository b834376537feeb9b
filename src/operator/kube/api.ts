import { Writable } from 'node:stream'
import {
  ApiException,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  Exec,
  type KubeConfig,
  type KubernetesObject,
  NetworkingV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1StatefulSet,
} from '@kubernetes/client-node'
import type { Coding, PodSeen } from '../party.ts'
import { GROUP, VERSION } from '../resources.ts'

/** A pod cut off by a PartyCrasher carries this label: the chart's NetworkPolicy selects only pods without it. */
export const CUT_LABEL = 'houseparty.dev/cut-off'

const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

/** The HTTP status of a failed Kubernetes API call (0 when it never got an answer). */
export function statusOf(err: unknown): number {
  return err instanceof ApiException ? err.code : 0
}

/** A StatefulSet as the operator needs it. */
export interface PeersSeen {
  replicas: number
  coding: Coding
  /** The data claim template's name and storage request, bytes. */
  claimTemplate: string | undefined
  capacityBytes: number | undefined
  selector: string
  /** Where the peers read their API token (their HOUSEPARTY_API_TOKEN's secretKeyRef), if they have one. */
  tokenSecret?: { name: string; key: string } | undefined
  /** Where the peers' serving certificate comes from, when they serve HTTPS: the Secret mounted at HOUSEPARTY_TLS_CERT_FILE's directory (its ca.crt verifies them). */
  tlsSecret?: string | undefined
  /** The peers serve their API over HTTPS (HOUSEPARTY_TLS_CERT_FILE is set). */
  https: boolean
}

const UNITS: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 }

/** A Kubernetes quantity ("64Mi", "1G", "500") in bytes; undefined when it is not one. */
export function quantityBytes(q: string | undefined): number | undefined {
  const m = q ? /^(\d+(?:\.\d+)?)([kMGT]i?|)$/.exec(q) : null
  if (!m) return undefined
  return Number(m[1]) * (UNITS[m[2] as string] as number)
}

/** Every Kubernetes call the operator makes, in one place (the chart's Role grants exactly these). */
export class KubeApi {
  readonly core: CoreV1Api
  readonly apps: AppsV1Api
  readonly custom: CustomObjectsApi
  readonly coordination: CoordinationV1Api
  readonly networking: NetworkingV1Api
  readonly #exec: Exec

  constructor(kc: KubeConfig) {
    this.#exec = new Exec(kc)
    this.networking = kc.makeApiClient(NetworkingV1Api)
    this.core = kc.makeApiClient(CoreV1Api)
    this.apps = kc.makeApiClient(AppsV1Api)
    this.custom = kc.makeApiClient(CustomObjectsApi)
    this.coordination = kc.makeApiClient(CoordinationV1Api)
  }

  /** statefulsets: get */
  async peers(namespace: string, name: string): Promise<PeersSeen> {
    const sts: V1StatefulSet = await this.apps.readNamespacedStatefulSet({ name, namespace })
    const env = sts.spec?.template.spec?.containers?.[0]?.env ?? []
    const num = (key: string, fallback: number): number => {
      const v = env.find((e) => e.name === key)?.value
      return v !== undefined && /^\d+$/.test(v) ? Number(v) : fallback
    }
    const template = sts.spec?.volumeClaimTemplates?.[0]
    const labels = sts.spec?.selector?.matchLabels ?? {}
    const tokenRef = env.find((e) => e.name === 'HOUSEPARTY_API_TOKEN')?.valueFrom?.secretKeyRef
    const certFile = env.find((e) => e.name === 'HOUSEPARTY_TLS_CERT_FILE')?.value
    const certDir = certFile?.slice(0, certFile.lastIndexOf('/'))
    const certMount = sts.spec?.template.spec?.containers?.[0]?.volumeMounts?.find((m) => m.mountPath.replace(/\/$/, '') === certDir)
    const certVolume = sts.spec?.template.spec?.volumes?.find((v) => v.name === certMount?.name)
    return {
      replicas: sts.spec?.replicas ?? 1,
      coding: { k: num('HOUSEPARTY_DATA_FRAGMENTS', 2), m: num('HOUSEPARTY_PARITY_FRAGMENTS', 1) },
      claimTemplate: template?.metadata?.name,
      capacityBytes: quantityBytes(template?.spec?.resources?.requests?.storage),
      selector: Object.entries(labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
      tokenSecret: tokenRef?.name && tokenRef.key ? { name: tokenRef.name, key: tokenRef.key } : undefined,
      https: Boolean(certFile),
      tlsSecret: certVolume?.secret?.secretName,
    }
  }

  /** pods: list */
  async pods(namespace: string, statefulSet: string, selector: string): Promise<PodSeen[]> {
    const list = await this.core.listNamespacedPod({ namespace, labelSelector: selector })
    const out: PodSeen[] = []
    for (const p of list.items) {
      const name = p.metadata?.name ?? ''
      const ordinal = /-(\d+)$/.exec(name)?.[1]
      if (!name.startsWith(`${statefulSet}-`) || ordinal === undefined) continue
      out.push({
        name,
        uid: p.metadata?.uid ?? '',
        ordinal: Number(ordinal),
        ready: p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
        terminating: p.metadata?.deletionTimestamp !== undefined && p.metadata?.deletionTimestamp !== null,
        container: p.spec?.containers[0]?.name ?? '',
        restarts: p.status?.containerStatuses?.[0]?.restartCount ?? 0,
        ...(p.status?.podIP ? { ip: p.status.podIP } : {}),
        ...(p.spec?.nodeName ? { node: p.spec.nodeName } : {}),
      })
    }
    return out.sort((a, b) => a.ordinal - b.ordinal)
  }

  /** persistentvolumeclaims: list. The StatefulSet's claims are named TEMPLATE-STATEFULSET-ORDINAL. */
  async claims(namespace: string, template: string, statefulSet: string): Promise<{ name: string; ordinal: number }[]> {
    const list = await this.core.listNamespacedPersistentVolumeClaim({ namespace })
    const prefix = `${template}-${statefulSet}-`
    return list.items.flatMap((c) => {
      const name = c.metadata?.name ?? ''
      const ordinal = name.startsWith(prefix) ? name.slice(prefix.length) : ''
      return /^\d+$/.test(ordinal) && !c.metadata?.deletionTimestamp ? [{ name, ordinal: Number(ordinal) }] : []
    })
  }

  /** statefulsets/scale: patch */
  async scale(namespace: string, name: string, replicas: number): Promise<void> {
    await this.apps.patchNamespacedStatefulSetScale({ name, namespace, body: { spec: { replicas } } }, MERGE)
  }

  /** pods: delete. Only the pod with this UID: a pod already made again is left alone (returns false). */
  async deletePod(namespace: string, name: string, uid: string, options: { force?: boolean } = {}): Promise<boolean> {
    try {
      // force: no grace period, the pod's processes killed at once, as when its node is lost.
      const grace = options.force ? { gracePeriodSeconds: 0 } : {}
      await this.core.deleteNamespacedPod({ name, namespace, ...grace, body: { preconditions: { uid }, ...grace } })
      return true
    } catch (err) {
      if (statusOf(err) === 404 || statusOf(err) === 409) return false
      throw err
    }
  }

  /**
   * pods/exec: create and get (the exec is a websocket GET, which API servers
   * before 1.31 authorize as get). Runs a command in a pod's container to its
   * end; rejects with its output when it fails or does not end in time.
   */
  async exec(namespace: string, pod: string, container: string, command: string[], timeoutMs = 30_000): Promise<string> {
    let out = ''
    const collect = new Writable({
      write(chunk: Buffer, _enc, done) {
        out += chunk.toString('utf8')
        done()
      },
    })
    const what = `${command.join(' ')} in ${namespace}/${pod}`
    return new Promise<string>((resolve, reject) => {
      let ws: { close: () => void; on: (event: 'close', listener: () => void) => void } | undefined
      const timer = setTimeout(() => {
        ws?.close()
        reject(new Error(`${what}: no answer within ${timeoutMs} ms`))
      }, timeoutMs)
      const settle = (err?: Error): void => {
        clearTimeout(timer)
        if (err) reject(err)
        else resolve(out.trim())
      }
      this.#exec
        .exec(namespace, pod, container, command, collect, collect, null, false, (status) => {
          settle(status.status === 'Success' ? undefined : new Error(`${what}: ${status.message ?? status.reason ?? 'failed'}${out ? `: ${out.trim()}` : ''}`))
        })
        .then(
          (socket) => {
            ws = socket
            // A connection that closes without a status (the pod went away under it) is a failure too; settling twice is harmless.
            socket.on('close', () => setTimeout(() => settle(new Error(`${what}: the connection closed without an exit status`)), 100))
          },
          (err: unknown) => settle(err instanceof Error ? err : new Error(String(err))),
        )
    })
  }

  /**
   * networkpolicies: create; pods: patch. Cuts a pod off: a NetworkPolicy
   * selecting it alone that allows nothing in or out, and the label
   * CUT_LABEL, which takes the pod out of the chart's own NetworkPolicy
   * (policies add up: while that one selected it, its peers could still
   * reach it). The policy belongs to `owner`, so deleting the experiment
   * removes it even if the operator is gone.
   */
  async cutNetwork(owner: KubernetesObject, namespace: string, name: string, pod: string): Promise<void> {
    try {
      await this.networking.createNamespacedNetworkPolicy({
        namespace,
        body: {
          metadata: {
            name,
            namespace,
            labels: { 'app.kubernetes.io/managed-by': 'houseparty-operator' },
            ownerReferences: [
              { apiVersion: owner.apiVersion as string, kind: owner.kind as string, name: owner.metadata?.name as string, uid: owner.metadata?.uid as string },
            ],
          },
          spec: { podSelector: { matchLabels: { 'statefulset.kubernetes.io/pod-name': pod } }, policyTypes: ['Ingress', 'Egress'] },
        },
      })
    } catch (err) {
      if (statusOf(err) !== 409) throw err
    }
    await this.#labelCut(namespace, pod, owner.metadata?.name as string)
  }

  /** networkpolicies: delete; pods: patch. The label first, so the pod is under the chart's policy again before the cut goes. */
  async healNetwork(namespace: string, name: string, pod: string): Promise<void> {
    await this.#labelCut(namespace, pod, null)
    try {
      await this.networking.deleteNamespacedNetworkPolicy({ name, namespace })
    } catch (err) {
      if (statusOf(err) !== 404) throw err
    }
  }

  async #labelCut(namespace: string, pod: string, value: string | null): Promise<void> {
    try {
      await this.core.patchNamespacedPod({ name: pod, namespace, body: { metadata: { labels: { [CUT_LABEL]: value } } } }, MERGE)
    } catch (err) {
      // A pod deleted meanwhile: its successor is made without the label.
      if (statusOf(err) !== 404) throw err
    }
  }

  /** persistentvolumeclaims: delete */
  async deleteClaim(namespace: string, name: string): Promise<void> {
    try {
      await this.core.deleteNamespacedPersistentVolumeClaim({ name, namespace })
    } catch (err) {
      if (statusOf(err) !== 404) throw err
    }
  }

  /** secrets: get (the party's API token, when it has one) */
  async secretValue(namespace: string, name: string, key: string): Promise<string | undefined> {
    const secret = await this.core.readNamespacedSecret({ name, namespace })
    const v = secret.data?.[key]
    return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8')
  }

  /** houseparties/status, partycrashers/status: patch */
  async patchStatus(plural: string, namespace: string, name: string, status: unknown): Promise<void> {
    await this.custom.patchNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace, plural, name, body: { status } }, MERGE)
  }

  /** houseparties, partycrashers: get (re-read before acting: the event that woke us may be stale) */
  async read<T>(plural: string, namespace: string, name: string): Promise<T | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, name })) as T
    } catch (err) {
      if (statusOf(err) === 404) return undefined
      throw err
    }
  }

  /** events: create. What the operator did, on the resource it did it for (kubectl describe shows it). */
  async event(obj: KubernetesObject, type: 'Normal' | 'Warning', reason: string, message: string, component: string): Promise<void> {
    const now = new Date()
    const namespace = obj.metadata?.namespace ?? 'default'
    await this.core.createNamespacedEvent({
      namespace,
      body: {
        metadata: { generateName: `${obj.metadata?.name}.`, namespace },
        involvedObject: {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          name: obj.metadata?.name,
          namespace,
          uid: obj.metadata?.uid,
          resourceVersion: obj.metadata?.resourceVersion,
        },
        type,
        reason,
        message: message.slice(0, 1000),
        source: { component },
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    })
  }
}
