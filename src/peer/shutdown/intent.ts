/**
 * What a SIGTERM means for this peer's data. A storage node that is stopped
 * is not a storage node that is going away: Kubernetes stops pods every day
 * (a rolling upgrade, a node drain, `kubectl delete pod`) and starts them
 * again on the same volume. Handing every fragment off on each of those stops
 * would move the whole party's data on every upgrade.
 *
 *   handoff: leaving for good; fragments and tracker records go to the others first.
 *   restart: stepping out; nothing moves, and the party waits --rebuild-delay-ms
 *            for the peer to come back with its data dir before rebuilding.
 */
export type StopIntent = 'handoff' | 'restart'

/** What Kubernetes says about the pod being stopped. */
export interface PodFacts {
  /** The pod's ordinal in its StatefulSet (the -N of its name). */
  ordinal: number
  /** The StatefulSet's desired replicas; undefined when the pod has no StatefulSet. */
  replicas: number | undefined
  /** The StatefulSet is being deleted (helm uninstall). */
  statefulSetDeleting: boolean
  /** A volume claim of the pod is being deleted: the data dir will not come back. */
  claimDeleting: boolean
}

/**
 * The pure decision: a pod comes back on its volume only if its StatefulSet
 * still counts it and neither the set nor its claim is being deleted. Anything
 * else, and any doubt, is a leave for good: moving data that did not need to
 * move costs time, while a peer that never returns would cost redundancy.
 */
export function decideStop(facts: PodFacts | undefined): { intent: StopIntent; why: string } {
  if (!facts) return { intent: 'handoff', why: 'Kubernetes could not say whether this pod comes back' }
  if (facts.replicas === undefined) return { intent: 'handoff', why: 'the pod belongs to no StatefulSet' }
  if (facts.statefulSetDeleting) return { intent: 'handoff', why: 'the StatefulSet is being deleted' }
  if (facts.claimDeleting) return { intent: 'handoff', why: "the pod's volume claim is being deleted" }
  if (facts.ordinal >= facts.replicas) return { intent: 'handoff', why: `the StatefulSet scales down to ${facts.replicas}` }
  return { intent: 'restart', why: `the StatefulSet keeps ${facts.replicas} pods, this one included` }
}

/** The ordinal of a StatefulSet pod name (`houseparty-3` → 3); undefined for other names. */
export function podOrdinal(podName: string): number | undefined {
  const m = /-(\d+)$/.exec(podName)
  return m ? Number(m[1]) : undefined
}
