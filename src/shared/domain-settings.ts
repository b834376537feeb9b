/** Where a peer runs, for placing files across failure domains (a part of PEER_SETTINGS). */
export const DOMAIN_SETTINGS = [
  {
    key: 'domains.node',
    flag: '--node',
    env: 'HOUSEPARTY_NODE',
    kind: 'string',
    default: '',
    description:
      "The machine this peer runs on (in Kubernetes: the downward API's spec.nodeName). Peers on one node share its fate: no file keeps more than m fragments on one node when the party has nodes enough. Empty: a node of its own.",
  },
  {
    key: 'domains.zone',
    flag: '--zone',
    env: 'HOUSEPARTY_ZONE',
    kind: 'string',
    default: '',
    description:
      "The zone (failure domain above the node) this peer runs in; files are spread so that losing one zone loses at most m fragments of any file, where the zones allow it. Empty: read from the node's topology.kubernetes.io/zone label with --domains-from-node, else the node is a zone of its own.",
  },
  {
    key: 'domains.region',
    flag: '--region',
    env: 'HOUSEPARTY_REGION',
    kind: 'string',
    default: '',
    description:
      "The region above the zone. Empty: read from the node's topology.kubernetes.io/region label with --domains-from-node, else the zone is a region of its own.",
  },
  {
    key: 'domains.fromNode',
    flag: '--domains-from-node',
    env: 'HOUSEPARTY_DOMAINS_FROM_NODE',
    kind: 'bool',
    default: false,
    description:
      "Read --zone and --region (those not set) from the labels of Kubernetes Node --node, through the pod's service account (it needs get on that node). If the labels cannot be read the peer starts without them and says so.",
  },
] as const
