/**
 * The operator's custom resources, as TypeScript sees them. Their OpenAPI
 * schemas (validation, defaults, printer columns) are the CRDs in
 * charts/houseparty/crds/; the API server applies the defaults, so a spec
 * read here has every field.
 */
import type { KubernetesObject } from '@kubernetes/client-node'

export const GROUP = 'houseparty.dev'
export const VERSION = 'v1alpha1'

/** Where a party runs: its StatefulSet, and how to reach its HTTP API. */
export interface PartyRef {
  /** The peers' StatefulSet, in the resource's namespace. */
  statefulSet: string
  /** The Service in front of every peer's HTTP API (the chart's client Service); default: the StatefulSet's name. */
  service?: string
  /** The peers' HTTP API port. */
  apiPort: number
  /** A Secret key holding the API token, when the party requires one. */
  tokenSecret?: { name: string; key: string }
}

export type Reclaim = 'Delete' | 'Retain'

export interface HousePartySpec extends PartyRef {
  minGuests: number
  maxGuests: number
  /** Scale up when the bytes held pass this share of the guests' volume capacity. */
  targetFill: number
  /** What happens to a removed peer's PersistentVolumeClaim once it has handed its data off. */
  reclaim: Reclaim
  /** Stop making decisions (status still updates). */
  paused: boolean
}

export interface Decision {
  action: string
  reason: string
  time: string
}

export interface HousePartyStatus {
  observedGeneration?: number
  guests?: number
  replicas?: number
  fill?: number
  degraded?: number
  lost?: number
  lastDecision?: Decision
}

export type HouseParty = KubernetesObject & { spec: HousePartySpec; status?: HousePartyStatus }

/**
 * DeletePod and DeletePodAndVolume go through the API; KillProcess and
 * Freeze exec `houseparty signal` in the peer's container; CutNetwork puts a
 * deny-all NetworkPolicy on the pod (only where the network plugin enforces
 * NetworkPolicies). Freeze and CutNetwork last `durationSeconds`. DeleteNode
 * and DeleteNodeAndVolumes hit every peer pod of one node at once (as the
 * loss of a machine, or of a machine and its disks, does).
 */
export type CrashAction = 'DeletePod' | 'DeletePodAndVolume' | 'KillProcess' | 'Freeze' | 'CutNetwork' | 'DeleteNode' | 'DeleteNodeAndVolumes'

/** Actions whose round hits a whole node (count is then the number of nodes: one). */
export const NODE_ACTIONS: ReadonlySet<CrashAction> = new Set(['DeleteNode', 'DeleteNodeAndVolumes'])

/** Faults that last a while and are then undone, as opposed to crashes. */
export const TIMED_ACTIONS: ReadonlySet<CrashAction> = new Set(['Freeze', 'CutNetwork'])

export interface PartyCrasherSpec extends PartyRef {
  action: CrashAction
  /** Peers hit at once in each round. */
  count: number
  rounds: number
  /** Pause between the end of one round (full redundancy again) and the next. */
  intervalSeconds: number
  /** Refuse count > m unless this is true. */
  allowDataLoss: boolean
  paused: boolean
  /** Files read back and compared with their hashes after each round (0: none). */
  sampleFiles: number
  /** A round that has not reached full redundancy by then is recorded as such, and the experiment stops. */
  roundTimeoutSeconds: number
  /** Freeze, CutNetwork: how long the peer stays frozen or cut off. */
  durationSeconds: number
}

export interface CrashTarget {
  pod: string
  uid: string
  /** The guest's ring ID and incarnation before the round, to see the party notice. */
  guest?: string
  incarnation?: number
  /** The pod's container restarts before the round: a KillProcess is not repeated on a container that already restarted. */
  restarts?: number
}

export interface RoundReport {
  round: number
  targets: string[]
  /** DeleteNode rounds: the node whose pods were deleted. */
  node?: string
  startedAt: string
  action?: CrashAction
  /** Seconds from the crash to the party dropping (or renewing) every target's guest entry; absent when it never did (a pause shorter than failure detection). */
  deathDeclaredSeconds?: number
  /** Seconds from the crash to every peer ready, on one guest list, and no file degraded. */
  fullRedundancySeconds?: number
  filesChecked?: number
  filesUnreadable?: number
  filesLost?: number
  outcome: 'Recovered' | 'TimedOut'
}

/**
 * Crashing → WaitingForDeath → WaitingForRedundancy for a crash; Crashing →
 * Holding (frozen or cut off for durationSeconds) → Releasing →
 * WaitingForRedundancy for a timed fault.
 */
export type RoundStage = 'Crashing' | 'WaitingForDeath' | 'Holding' | 'Releasing' | 'WaitingForRedundancy'

export interface CurrentRound {
  round: number
  stage: RoundStage
  targets: CrashTarget[]
  /** DeleteNode rounds: the node whose pods are the targets. */
  node?: string
  startedAt: string
  deathDeclaredSeconds?: number
}

export interface CrasherSummary {
  rounds: number
  medianDeathDeclaredSeconds?: number
  medianFullRedundancySeconds?: number
  filesLost: number
  filesUnreadable: number
}

export type CrasherPhase = 'Pending' | 'Running' | 'Paused' | 'Refused' | 'Completed' | 'Failed'

export interface PartyCrasherStatus {
  observedGeneration?: number
  phase?: CrasherPhase
  message?: string
  current?: CurrentRound
  rounds?: RoundReport[]
  summary?: CrasherSummary
  lastRoundEndedAt?: string
}

export type PartyCrasher = KubernetesObject & { spec: PartyCrasherSpec; status?: PartyCrasherStatus }
