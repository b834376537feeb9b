import { HousePartyError } from '../../shared/errors.ts'
import { getObject } from '../kube/index.ts'
import type { PodFacts } from './intent.ts'
import { podOrdinal } from './intent.ts'

interface Meta {
  metadata?: { name?: string; deletionTimestamp?: string; ownerReferences?: { kind?: string; name?: string }[] }
}
interface Pod extends Meta {
  spec?: { volumes?: { persistentVolumeClaim?: { claimName?: string } }[] }
}
interface StatefulSet extends Meta {
  spec?: { replicas?: number }
}

/** Reads what decides a stop: the pod, its StatefulSet and its volume claims. */
export async function podFacts(podName: string, signal: AbortSignal): Promise<PodFacts> {
  const ordinal = podOrdinal(podName)
  if (ordinal === undefined) throw new HousePartyError('ERR_INVALID_CONFIG', `pod name ${podName} has no ordinal: is --pod-name a StatefulSet pod's name?`)
  const get = <T>(what: 'pod' | 'statefulSet' | 'claim', name: string): Promise<T> => getObject<T>(what, name, signal)

  const pod = await get<Pod>('pod', podName)
  const owner = pod.metadata?.ownerReferences?.find((o) => o.kind === 'StatefulSet')?.name
  const claims = (pod.spec?.volumes ?? []).flatMap((v) => (v.persistentVolumeClaim?.claimName ? [v.persistentVolumeClaim.claimName] : []))
  const [set, claimsDeleting] = await Promise.all([
    owner ? get<StatefulSet>('statefulSet', owner) : undefined,
    Promise.all(claims.map(async (name) => (await get<Meta>('claim', name)).metadata?.deletionTimestamp !== undefined)),
  ])
  return {
    ordinal,
    replicas: set ? (set.spec?.replicas ?? 1) : undefined,
    statefulSetDeleting: set?.metadata?.deletionTimestamp !== undefined,
    claimDeleting: claimsDeleting.some(Boolean),
  }
}
