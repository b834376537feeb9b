import { HousePartyError } from '../../shared/errors.ts'
import type { Logger } from '../../shared/logger.ts'
import { Domains } from '../protocol/index.ts'
import { getObject, inCluster } from './api.ts'

interface Node {
  metadata?: { labels?: Record<string, string> }
}

/** The well-known labels Kubernetes (and every cloud provider) sets on a node. */
export const ZONE_LABEL = 'topology.kubernetes.io/zone'
export const REGION_LABEL = 'topology.kubernetes.io/region'

/** The zone and region labels of Node `name` (either may be absent: a cluster without zones, such as kind). */
export async function nodeDomains(name: string, signal: AbortSignal): Promise<Pick<Domains, 'zone' | 'region'>> {
  const labels = (await getObject<Node>('node', name, signal)).metadata?.labels ?? {}
  const out: Pick<Domains, 'zone' | 'region'> = {}
  if (labels[ZONE_LABEL]) out.zone = labels[ZONE_LABEL]
  if (labels[REGION_LABEL]) out.region = labels[REGION_LABEL]
  return out
}

/** How long a start waits for the API server to say where its node is. */
const ASK_TIMEOUT_MS = 5_000

export interface DomainSettings {
  node: string
  zone: string
  region: string
  fromNode: boolean
}

/**
 * Where this peer runs: --node, --zone and --region, with the zone and
 * region not given read from the node's labels when --domains-from-node
 * asks for it (in a pod). A name that is not a valid domain name is a
 * configuration error; labels that cannot be read leave the peer without
 * them (it still starts: a node of its own is placed as before) and say so.
 */
export async function peerDomains(settings: DomainSettings, log: Logger): Promise<Domains> {
  const given: Domains = {}
  if (settings.node) given.node = settings.node
  if (settings.zone) given.zone = settings.zone
  if (settings.region) given.region = settings.region
  if (settings.fromNode && given.node && (!given.zone || !given.region)) {
    if (!inCluster()) log.warn({ node: given.node }, '--domains-from-node outside a pod: no zone or region read')
    else {
      try {
        const labels = await nodeDomains(given.node, AbortSignal.timeout(ASK_TIMEOUT_MS))
        if (!given.zone && labels.zone) given.zone = labels.zone
        if (!given.region && labels.region) given.region = labels.region
      } catch (err) {
        log.warn({ node: given.node, err: (err as Error).message }, "could not read this node's zone and region labels; starting without them")
      }
    }
  }
  const checked = Domains.safeParse(given)
  if (!checked.success) throw new HousePartyError('ERR_INVALID_CONFIG', `failure domains ${JSON.stringify(given)}: ${checked.error.issues[0]?.message}`)
  log.info({ domains: checked.data }, 'failure domains')
  return checked.data
}
