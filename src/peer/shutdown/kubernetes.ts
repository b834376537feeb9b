import { existsSync, readFileSync } from 'node:fs'
import type { PodFacts } from './intent.ts'
import { podOrdinal } from './intent.ts'

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

/** True inside a pod that can reach its API server with a service account token. */
export function inCluster(): boolean {
  return process.env.KUBERNETES_SERVICE_HOST !== undefined && existsSync(`${SERVICE_ACCOUNT_DIR}/token`)
}

/**
 * Reads what decides a stop: the pod, its StatefulSet and its volume claims
 * (three GETs; the chart's peer Role grants exactly these). The client is
 * loaded only here, at the stop, so a peer does not pay for it at start-up.
 */
export async function podFacts(podName: string, signal: AbortSignal): Promise<PodFacts> {
  const ordinal = podOrdinal(podName)
  if (ordinal === undefined) throw new Error(`pod name ${podName} has no ordinal`)
  const namespace = readFileSync(`${SERVICE_ACCOUNT_DIR}/namespace`, 'utf8').trim()
  const { AppsV1Api, CoreV1Api, KubeConfig } = await import('@kubernetes/client-node')
  const kc = new KubeConfig()
  kc.loadFromCluster()
  const core = kc.makeApiClient(CoreV1Api)
  const apps = kc.makeApiClient(AppsV1Api)
  const abortable = <T>(p: Promise<T>): Promise<T> =>
    Promise.race([p, new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))])

  const pod = await abortable(core.readNamespacedPod({ name: podName, namespace }))
  const owner = pod.metadata?.ownerReferences?.find((o) => o.kind === 'StatefulSet')
  const claims = (pod.spec?.volumes ?? []).flatMap((v) => (v.persistentVolumeClaim ? [v.persistentVolumeClaim.claimName] : []))
  const [set, claimsDeleting] = await Promise.all([
    owner ? abortable(apps.readNamespacedStatefulSet({ name: owner.name, namespace })) : undefined,
    Promise.all(claims.map(async (name) => (await abortable(core.readNamespacedPersistentVolumeClaim({ name, namespace }))).metadata?.deletionTimestamp)),
  ])
  return {
    ordinal,
    replicas: set ? (set.spec?.replicas ?? 1) : undefined,
    statefulSetDeleting: set?.metadata?.deletionTimestamp !== undefined,
    claimDeleting: claimsDeleting.some((d) => d !== undefined),
  }
}
