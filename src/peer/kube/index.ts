export { getObject, inCluster, PEER_KUBERNETES_READS, type Read } from './api.ts'
export { type DomainSettings, nodeDomains, peerDomains } from './node.ts'
