import { existsSync, readFileSync } from 'node:fs'
import { request } from 'node:https'
import { HousePartyError } from '../../shared/errors.ts'

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

/**
 * The only Kubernetes calls a peer makes, all `get`: the chart's peer Role
 * (namespaced reads) and ClusterRole (its node) grant exactly these (a test
 * compares the two). A few GETs do not warrant @kubernetes/client-node in
 * every peer: loading it takes half a second and 90 MB, at the moment a pod
 * is asked to stop.
 */
export const PEER_KUBERNETES_READS = {
  pod: { group: '', resource: 'pods', namespaced: true },
  statefulSet: { group: 'apps', resource: 'statefulsets', namespaced: true },
  claim: { group: '', resource: 'persistentvolumeclaims', namespaced: true },
  node: { group: '', resource: 'nodes', namespaced: false },
} as const

export type Read = keyof typeof PEER_KUBERNETES_READS

/** True inside a pod that can reach its API server with a service account token. */
export function inCluster(): boolean {
  return process.env.KUBERNETES_SERVICE_HOST !== undefined && existsSync(`${SERVICE_ACCOUNT_DIR}/token`)
}

/** Reads one object by name with the pod's service account (namespaced reads in the pod's own namespace). */
export function getObject<T>(what: Read, name: string, signal: AbortSignal): Promise<T> {
  const { group, resource, namespaced } = PEER_KUBERNETES_READS[what]
  const base = group === '' ? '/api/v1' : `/apis/${group}/v1`
  const scope = namespaced ? `/namespaces/${encodeURIComponent(readFileSync(`${SERVICE_ACCOUNT_DIR}/namespace`, 'utf8').trim())}` : ''
  const credentials: Credentials = { token: readFileSync(`${SERVICE_ACCOUNT_DIR}/token`, 'utf8').trim(), ca: readFileSync(`${SERVICE_ACCOUNT_DIR}/ca.crt`) }
  return getJson<T>(`${base}${scope}/${resource}/${encodeURIComponent(name)}`, credentials, signal)
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
