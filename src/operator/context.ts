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
  /** Aborted when this replica stops leading (or stops): a reconcile makes no call after that. */
  signal: AbortSignal
}

/**
 * The Kubernetes API as one reconcile sees it: every call first checks that
 * this replica still leads, so a reconcile that outlives its leadership
 * (the Lease lost mid-way) makes no further change; the new leader re-reads
 * the state and carries on.
 */
export function leaderOnly(kube: KubeApi, signal: AbortSignal): KubeApi {
  return new Proxy(kube, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        signal.throwIfAborted()
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
}

/** A client of the party's API, with the token the resource names, else the one the peers themselves read (their StatefulSet's). */
export async function partyClientFor(kube: KubeApi, namespace: string, ref: PartyRef, podIp?: string): Promise<PartyClient> {
  const peers = await kube.peers(namespace, ref.statefulSet)
  const secret = ref.tokenSecret ?? peers.tokenSecret
  const token = secret ? await kube.secretValue(namespace, secret.name, secret.key) : undefined
  const serviceHost = `${ref.service || ref.statefulSet}.${namespace}.svc`
  const host = podIp ? (podIp.includes(':') ? `[${podIp}]` : podIp) : serviceHost
  if (!peers.https) return new PartyClient(`http://${host}:${ref.apiPort}`, token)
  // A peer reached by IP is checked against the client Service's name, which its certificate covers; the CA is the
  // TLS Secret's ca.crt (none, as with a public issuer: the system's CAs).
  const ca = peers.tlsSecret ? await kube.secretValue(namespace, peers.tlsSecret, 'ca.crt').catch(() => undefined) : undefined
  return new PartyClient(`https://${host}:${ref.apiPort}`, token, { ca, servername: serviceHost })
}
