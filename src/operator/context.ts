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
  /**
   * A client for the party a resource points at, with its token: through its
   * client Service, or straight to the peer at `podIp` (a chaos round asks a
   * peer it did not hit, since the Service may route to one frozen or cut off).
   */
  party: (namespace: string, ref: PartyRef, podIp?: string) => Promise<PartyClient>
}

export async function partyClientFor(kube: KubeApi, namespace: string, ref: PartyRef, podIp?: string): Promise<PartyClient> {
  const token = ref.tokenSecret ? await kube.secretValue(namespace, ref.tokenSecret.name, ref.tokenSecret.key) : undefined
  const host = podIp ? (podIp.includes(':') ? `[${podIp}]` : podIp) : `${ref.service || ref.statefulSet}.${namespace}.svc`
  return new PartyClient(`http://${host}:${ref.apiPort}`, token)
}
