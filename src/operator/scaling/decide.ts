import { type Coding, fullyRedundant, heldBytes, type PartySeen, type PodSeen } from '../party.ts'
import type { HousePartySpec } from '../resources.ts'

/** Scale down only when the guests left would be at most this share of the target fill: no flapping at the edge. */
export const SCALE_DOWN_HEADROOM = 0.8

export interface ScalingObservation {
  spec: HousePartySpec
  coding: Coding
  /** The StatefulSet's desired replicas. */
  replicas: number
  pods: PodSeen[]
  party: PartySeen | undefined
  /** Each peer's volume size (the claim template's storage request), bytes. */
  capacityBytes: number | undefined
  /** The StatefulSet's data claims that exist, with the ordinal of the pod they belong to. */
  claims: { name: string; ordinal: number }[]
}

export type ScalingAction =
  | { kind: 'Scale'; replicas: number; reason: string }
  | { kind: 'DeleteClaim'; claim: string; reason: string }
  /** The party is changing: look again soon. */
  | { kind: 'Wait'; reason: string }
  /** Nothing to do. */
  | { kind: 'Hold'; reason: string }

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`

/**
 * The scaling decision, from what was observed (pure: the reconciler does
 * what it says). One step at a time: nothing happens while pods come, go or
 * start, or while the guest list differs from the StatefulSet; a scale-down
 * removes one peer and waits until it has handed its data off and left
 * before anything else; a claim is reclaimed only once the party is whole
 * without it.
 */
export function decideScaling(o: ScalingObservation): ScalingAction {
  const { spec, coding, replicas, party } = o
  if (spec.paused) return { kind: 'Hold', reason: 'paused' }
  const floor = Math.max(spec.minGuests, coding.k + coding.m)
  if (floor > spec.maxGuests)
    return { kind: 'Hold', reason: `maxGuests ${spec.maxGuests} is below the least the party can run on (${floor}: minGuests and k+m)` }

  const redundancy = fullyRedundant(replicas, o.pods, party)
  const inTransit = o.pods.length !== replicas || o.pods.some((p) => p.terminating || !p.ready)
  if (inTransit || !party || party.guests.length !== replicas) return { kind: 'Wait', reason: redundancy.why }

  if (replicas < floor) return { kind: 'Scale', replicas: floor, reason: `${replicas} peers, below the minimum of ${floor}` }

  if (redundancy.ok && spec.reclaim === 'Delete') {
    const left = o.claims.filter((c) => c.ordinal >= replicas).sort((a, b) => a.ordinal - b.ordinal)[0]
    if (left) return { kind: 'DeleteClaim', claim: left.name, reason: `peer ${left.ordinal} left and the party is whole without it` }
  }

  if (replicas > spec.maxGuests) {
    if (!redundancy.ok) return { kind: 'Hold', reason: `${replicas} peers, above maxGuests ${spec.maxGuests}, but ${redundancy.why}` }
    return { kind: 'Scale', replicas: replicas - 1, reason: `${replicas} peers, above maxGuests ${spec.maxGuests}: one leaves` }
  }

  if (o.capacityBytes === undefined || o.capacityBytes <= 0)
    return { kind: 'Hold', reason: 'the peers’ volume size is unknown (no storage request in the claim template)' }
  const unknown = party.guests.filter((g) => g.heldBytes === null).length
  if (unknown > 0) return { kind: 'Wait', reason: `${unknown} guests have not said what they hold yet` }
  const held = heldBytes(party)
  const fill = held / (replicas * o.capacityBytes)

  if (fill > spec.targetFill) {
    if (replicas >= spec.maxGuests)
      return { kind: 'Hold', reason: `fill ${pct(fill)} above target ${pct(spec.targetFill)}, but already at maxGuests ${spec.maxGuests}` }
    const needed = Math.ceil(held / (o.capacityBytes * spec.targetFill))
    const to = Math.min(spec.maxGuests, Math.max(replicas + 1, needed))
    return { kind: 'Scale', replicas: to, reason: `fill ${pct(fill)} above target ${pct(spec.targetFill)}` }
  }

  if (replicas > floor) {
    const after = held / ((replicas - 1) * o.capacityBytes)
    if (after <= spec.targetFill * SCALE_DOWN_HEADROOM) {
      if (!redundancy.ok) return { kind: 'Hold', reason: `fewer peers would do (fill ${pct(after)} with one less), but ${redundancy.why}` }
      return { kind: 'Scale', replicas: replicas - 1, reason: `fill would be ${pct(after)} with one peer less (target ${pct(spec.targetFill)}): one leaves` }
    }
  }
  return { kind: 'Hold', reason: `fill ${pct(fill)}, target ${pct(spec.targetFill)}, ${replicas} peers` }
}
