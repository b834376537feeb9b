import type { Logger } from '../shared/logger.ts'
import type { KubeApi } from './kube/api.ts'
import type { OperatorMetrics } from './metrics.ts'
import { PartyClient } from './party-client.ts'
import type { PartyRef } from './resources.ts'

/** What a reconciler needs: the Kubernetes API, the party's API, metrics, a logger, the time. */
export interface ReconcileContext {
  kube: KubeApi
  metrics: OperatorMetrics
  log: Logger
  now: () => number
  random: () => number
  resyncMs: number
  /** A client for the party a resource points at (its client Service, its token). */
  party: (namespace: string, ref: PartyRef) => Promise<PartyClient>
}

export async function partyClientFor(kube: KubeApi, namespace: string, ref: PartyRef): Promise<PartyClient> {
  const token = ref.tokenSecret ? await kube.secretValue(namespace, ref.tokenSecret.name, ref.tokenSecret.key) : undefined
  return new PartyClient(`http://${ref.service || ref.statefulSet}.${namespace}.svc:${ref.apiPort}`, token)
}
