import { existsSync, readFileSync } from 'node:fs'
import { request } from 'node:https'
import { HousePartyError } from '../../shared/errors.ts'
import type { PodFacts } from './intent.ts'
import { podOrdinal } from './intent.ts'

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

/**
 * The only Kubernetes calls a peer makes, all `get`: the chart's peer Role
 * grants exactly these (a test compares the two). Three GETs do not warrant
 * @kubernetes/client-node in every peer: loading it takes half a second and
 * 90 MB, at the moment a pod is asked to stop.
 */
export const PEER_KUBERNETES_READS = {
  pod: { group: '', resource: 'pods' },
  statefulSet: { group: 'apps', resource: 'statefulsets' },
  claim: { group: '', resource: 'persistentvolumeclaims' },
} as const

type Read = keyof typeof PEER_KUBERNETES_READS

interface Meta {
  metadata?: { name?: string; deletionTimestamp?: string; ownerReferences?: { kind?: string; name?: string }[] }
}
interface Pod extends Meta {
  spec?: { volumes?: { persistentVolumeClaim?: { claimName?: string } }[] }
}
interface StatefulSet extends Meta {
  spec?: { replicas?: number }
}

/** True inside a pod that can reach its API server with a service account token. */
export function inCluster(): boolean {
  return process.env.KUBERNETES_SERVICE_HOST !== undefined && existsSync(`${SERVICE_ACCOUNT_DIR}/token`)
}

/** Reads what decides a stop: the pod, its StatefulSet and its volume claims. */
export async function podFacts(podName: string, signal: AbortSignal): Promise<PodFacts> {
  const ordinal = podOrdinal(podName)
  if (ordinal === undefined) throw new HousePartyError('ERR_INVALID_CONFIG', `pod name ${podName} has no ordinal: is --pod-name a StatefulSet pod's name?`)
  const namespace = readFileSync(`${SERVICE_ACCOUNT_DIR}/namespace`, 'utf8').trim()
  const credentials: Credentials = { token: readFileSync(`${SERVICE_ACCOUNT_DIR}/token`, 'utf8').trim(), ca: readFileSync(`${SERVICE_ACCOUNT_DIR}/ca.crt`) }
  const get = <T>(what: Read, name: string): Promise<T> => getJson<T>(namespacedPath(what, namespace, name), credentials, signal)

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

function namespacedPath(what: Read, namespace: string, name: string): string {
  const { group, resource } = PEER_KUBERNETES_READS[what]
  const base = group === '' ? '/api/v1' : `/apis/${group}/v1`
  return `${base}/namespaces/${encodeURIComponent(namespace)}/${resource}/${encodeURIComponent(name)}`
}

interface Credentials {
  token: string
  ca: Buffer
}

/** One authenticated GET against the API server, as in-cluster clients make it (service account token, cluster CA). */
function getJson<T>(path: string, { token, ca }: Credentials, signal: AbortSignal): Promise<T> {
  const host = process.env.KUBERNETES_SERVICE_HOST as string
  const port = Number(process.env.KUBERNETES_SERVICE_PORT ?? 443)
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, ca, signal, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        if (res.statusCode !== 200) reject(new HousePartyError('ERR_KUBERNETES_API', `GET ${path}: HTTP ${res.statusCode} ${body.slice(0, 200)}`))
        else {
          try {
            resolve(JSON.parse(body) as T)
          } catch {
            reject(new HousePartyError('ERR_KUBERNETES_API', `GET ${path}: not JSON`))
          }
        }
      })
    })
    req.on('error', reject)
    req.end()
  })
}
