/**
 * What the operator knows of a party at one moment, read from the peers'
 * own HTTP API (never guessed from Kubernetes objects alone): the guest list
 * with the bytes each guest holds, and the party's file health.
 */
export interface GuestSeen {
  id: string
  address: string
  incarnation: number
  heldBytes: number | null
}

export interface PartySeen {
  guests: GuestSeen[]
  files: number
  degraded: number
  lost: number
  /** Guests that answered the health census; fewer than the guest list means health is partly unknown. */
  answered: number
}

/** k+m of the party, from the peers' pod template (the settings every peer runs with). */
export interface Coding {
  k: number
  m: number
}

/** The peers' pods as the StatefulSet has them. */
export interface PodSeen {
  name: string
  uid: string
  ordinal: number
  ready: boolean
  terminating: boolean
  /** The peer container's name and restart count. */
  container: string
  restarts: number
  ip?: string
  /** The node the pod was scheduled to (spec.nodeName), once it was. */
  node?: string
}

/** Fragment bytes held over the whole party, as the guests last said (one that has not said counts 0). */
export function heldBytes(party: PartySeen): number {
  return party.guests.reduce((n, g) => n + (g.heldBytes ?? 0), 0)
}

/** The guest a pod runs: its advertised address is the pod's stable DNS name. */
export function guestOfPod(party: PartySeen, pod: string): GuestSeen | undefined {
  return party.guests.find((g) => g.address.startsWith(`${pod}.`) || g.address.split(':')[0] === pod)
}

/** Every peer ready, on one guest list of the expected size, and every file whole (lost files, which nothing brings back, may be ignored). */
export function fullyRedundant(
  replicas: number,
  pods: readonly PodSeen[],
  party: PartySeen | undefined,
  options: { ignoreLost?: boolean } = {},
): { ok: boolean; why: string } {
  const ready = pods.filter((p) => p.ready && !p.terminating).length
  if (pods.length !== replicas || ready !== replicas) return { ok: false, why: `${ready} of ${replicas} peers ready` }
  if (!party) return { ok: false, why: "the party's API did not answer" }
  if (party.guests.length !== replicas) return { ok: false, why: `${party.guests.length} guests on the list, ${replicas} peers` }
  if (party.answered < party.guests.length) return { ok: false, why: `${party.answered} of ${party.guests.length} guests answered the health census` }
  if (party.lost > 0 && !options.ignoreLost) return { ok: false, why: `${party.lost} files lost` }
  if (party.degraded > 0) return { ok: false, why: `${party.degraded} files degraded` }
  return { ok: true, why: `${replicas} guests, ${party.files} files, all whole` }
}
