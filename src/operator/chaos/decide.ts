import { type Coding, fullyRedundant, guestOfPod, type PartySeen, type PodSeen } from '../party.ts'
import {
  type CrasherSummary,
  type CrashTarget,
  type CurrentRound,
  NODE_ACTIONS,
  type PartyCrasherSpec,
  type PartyCrasherStatus,
  type RoundReport,
  TIMED_ACTIONS,
} from '../resources.ts'

export interface ChaosObservation {
  spec: PartyCrasherSpec
  status: PartyCrasherStatus
  coding: Coding
  replicas: number
  pods: PodSeen[]
  party: PartySeen | undefined
  /** Wall clock, ms. */
  now: number
  /** [0, 1): picks the targets of a round (injected, so tests are deterministic). */
  random: () => number
}

export type ChaosAction =
  | { kind: 'Refuse'; message: string }
  | { kind: 'Pause' }
  | { kind: 'Complete'; summary: CrasherSummary }
  /** Write the round to status first, so a restarted operator knows it began. */
  | { kind: 'StartRound'; current: CurrentRound }
  /** Crash the round's targets (idempotent: only pods with the recorded UID). */
  | { kind: 'Crash'; targets: CrashTarget[] }
  | { kind: 'DeathDeclared'; seconds: number }
  /** A timed fault is over: undo it (thaw, reconnect; idempotent). */
  | { kind: 'Release'; targets: CrashTarget[] }
  /** The fault's time is up (recording when the party declared the target dead, if it did). */
  | { kind: 'HoldEnded'; deathDeclaredSeconds: number | undefined }
  /** Still holding; the party declared the target dead meanwhile. */
  | { kind: 'DeathDeclaredWhileHeld'; seconds: number }
  /** Full redundancy again: check the sample, then record the round. */
  | { kind: 'Recovered'; seconds: number }
  | { kind: 'TimedOut'; message: string }
  | { kind: 'Wait'; reason: string; afterMs: number }
  | { kind: 'Done' }

const secondsSince = (iso: string, now: number): number => Math.round((now - Date.parse(iso)) / 10) / 100

/**
 * The next step of a chaos experiment (pure). A round goes Crashing →
 * WaitingForDeath → WaitingForRedundancy and is recorded; the state lives in
 * status, so an operator restarted at any point carries on where it was and
 * never repeats a round. A round starts only on a fully redundant party.
 */
export function decideChaos(o: ChaosObservation): ChaosAction {
  const { spec, status, coding } = o
  const phase = status.phase ?? 'Pending'
  if (phase === 'Completed' || phase === 'Failed') return { kind: 'Done' }
  const byNode = NODE_ACTIONS.has(spec.action)
  if (byNode) {
    const refused = refuseNodeRound(o)
    if (refused) return refused
  } else if (spec.count > coding.m && !spec.allowDataLoss) {
    return {
      kind: 'Refuse',
      message: `count ${spec.count} is more than m = ${coding.m}: files would be lost. Set allowDataLoss: true to run it anyway.`,
    }
  }
  if (!byNode && spec.count >= o.replicas) return { kind: 'Refuse', message: `count ${spec.count} would crash every one of the ${o.replicas} peers` }
  const timed = TIMED_ACTIONS.has(spec.action)
  if (timed && spec.durationSeconds >= spec.roundTimeoutSeconds) {
    return {
      kind: 'Refuse',
      message: `durationSeconds ${spec.durationSeconds} leaves no time to recover within roundTimeoutSeconds ${spec.roundTimeoutSeconds}`,
    }
  }

  const current = status.current
  const timeoutMs = spec.roundTimeoutSeconds * 1000
  if (current) {
    const elapsed = o.now - Date.parse(current.startedAt)
    if (current.stage === 'Crashing') return { kind: 'Crash', targets: current.targets }
    // A fault in place is always undone, whatever else is late.
    if (current.stage === 'Releasing') return { kind: 'Release', targets: current.targets }
    if (current.stage === 'Holding') {
      const declared = current.deathDeclaredSeconds ?? (current.targets.every((t) => noticed(t, o.party)) ? secondsSince(current.startedAt, o.now) : undefined)
      const left = spec.durationSeconds * 1000 - elapsed
      if (left <= 0) return { kind: 'HoldEnded', deathDeclaredSeconds: declared }
      if (declared !== undefined && current.deathDeclaredSeconds === undefined) return { kind: 'DeathDeclaredWhileHeld', seconds: declared }
      return { kind: 'Wait', reason: `held for ${Math.ceil(left / 1000)} s more`, afterMs: Math.min(left, 250) }
    }
    if (elapsed > timeoutMs) return { kind: 'TimedOut', message: `round ${current.round} did not reach full redundancy within ${spec.roundTimeoutSeconds} s` }
    if (current.stage === 'WaitingForDeath') {
      const declared = current.targets.every((t) => noticed(t, o.party))
      return declared
        ? { kind: 'DeathDeclared', seconds: secondsSince(current.startedAt, o.now) }
        : { kind: 'Wait', reason: 'the party has not noticed yet', afterMs: 250 }
    }
    const redundancy = fullyRedundant(o.replicas, o.pods, o.party, { ignoreLost: true })
    return redundancy.ok ? { kind: 'Recovered', seconds: secondsSince(current.startedAt, o.now) } : { kind: 'Wait', reason: redundancy.why, afterMs: 500 }
  }

  const done = status.rounds?.length ?? 0
  if (done >= spec.rounds) return { kind: 'Complete', summary: summarize(status.rounds ?? []) }
  if (spec.paused) return { kind: 'Pause' }
  if (status.lastRoundEndedAt) {
    const wait = Date.parse(status.lastRoundEndedAt) + spec.intervalSeconds * 1000 - o.now
    if (wait > 0) return { kind: 'Wait', reason: `next round in ${Math.ceil(wait / 1000)} s`, afterMs: wait }
  }
  const redundancy = fullyRedundant(o.replicas, o.pods, o.party, { ignoreLost: true })
  if (!redundancy.ok || !o.party) return { kind: 'Wait', reason: `round ${done + 1} waits for full redundancy: ${redundancy.why}`, afterMs: 1000 }
  const party = o.party
  if (byNode) return startNodeRound(o, party, done + 1)
  const targets = pick(
    o.pods.filter((p) => guestOfPod(party, p.name)),
    spec.count,
    o.random,
  ).map((p) => {
    const g = guestOfPod(party, p.name)
    return { pod: p.name, uid: p.uid, guest: g?.id, incarnation: g?.incarnation, restarts: p.restarts }
  })
  if (targets.length < spec.count) return { kind: 'Wait', reason: `only ${targets.length} peers can be matched to guests`, afterMs: 1000 }
  return { kind: 'StartRound', current: { round: done + 1, stage: 'Crashing', targets, startedAt: new Date(o.now).toISOString() } }
}

/** Nodes with the party's pods on them, each with its pods (a pod not yet scheduled has no node). */
function podsByNode(pods: readonly PodSeen[]): Map<string, PodSeen[]> {
  const out = new Map<string, PodSeen[]>()
  for (const p of pods) if (p.node) out.set(p.node, [...(out.get(p.node) ?? []), p])
  return out
}

/**
 * A node round would lose files when the peers run on fewer nodes than a
 * k+m file needs to survive one of them (ceil((k+m)/m): placement keeps at
 * most m fragments per node only then), and it cannot run when one node
 * holds every peer.
 */
function refuseNodeRound(o: ChaosObservation): ChaosAction | undefined {
  const { k, m } = o.coding
  const nodes = podsByNode(o.pods)
  const needed = Math.ceil((k + m) / m)
  if (nodes.size > 0 && nodes.size < needed && !o.spec.allowDataLoss) {
    return {
      kind: 'Refuse',
      message: `the peers run on ${nodes.size} node(s): ${k}+${m} files need peers on at least ${needed} nodes to survive the loss of one. Set allowDataLoss: true to run it anyway.`,
    }
  }
  if (nodes.size === 1 && o.pods.length > 0) return { kind: 'Refuse', message: 'every peer runs on one node: deleting it would delete them all' }
  return undefined
}

/** A node round: one node, drawn at random among those running guests, and every peer pod on it. */
function startNodeRound(o: ChaosObservation, party: PartySeen, round: number): ChaosAction {
  if (o.pods.some((p) => !p.node)) return { kind: 'Wait', reason: 'a peer pod is not scheduled to a node yet', afterMs: 1000 }
  const nodes = [...podsByNode(o.pods.filter((p) => guestOfPod(party, p.name)))].sort((a, b) => (a[0] < b[0] ? -1 : 1))
  const [node, pods] = nodes[Math.floor(o.random() * nodes.length)] ?? []
  if (!node || !pods) return { kind: 'Wait', reason: 'no peer pod can be matched to a guest', afterMs: 1000 }
  const targets = pods.map((p) => {
    const g = guestOfPod(party, p.name)
    return { pod: p.name, uid: p.uid, guest: g?.id, incarnation: g?.incarnation, restarts: p.restarts }
  })
  return { kind: 'StartRound', current: { round, stage: 'Crashing', targets, node, startedAt: new Date(o.now).toISOString() } }
}

/** The party noticed a target: its guest entry is gone, or is a new incarnation (it restarted and rejoined). */
function noticed(t: CrashTarget, party: PartySeen | undefined): boolean {
  if (!party) return false
  const g = party.guests.find((x) => x.id === t.guest)
  return !g || (t.incarnation !== undefined && g.incarnation !== t.incarnation)
}

function pick<T>(items: readonly T[], count: number, random: () => number): T[] {
  const pool = [...items]
  const out: T[] = []
  while (out.length < count && pool.length > 0) out.push(pool.splice(Math.floor(random() * pool.length), 1)[0] as T)
  return out
}

function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid] : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

/** The experiment in a few numbers: what a crash cost. */
export function summarize(rounds: readonly RoundReport[]): CrasherSummary {
  const death = median(rounds.flatMap((r) => (r.deathDeclaredSeconds === undefined ? [] : [r.deathDeclaredSeconds])))
  const full = median(rounds.flatMap((r) => (r.fullRedundancySeconds === undefined ? [] : [r.fullRedundancySeconds])))
  return {
    rounds: rounds.length,
    ...(death === undefined ? {} : { medianDeathDeclaredSeconds: death }),
    ...(full === undefined ? {} : { medianFullRedundancySeconds: full }),
    filesLost: rounds.reduce((n, r) => n + (r.filesLost ?? 0), 0),
    filesUnreadable: rounds.reduce((n, r) => n + (r.filesUnreadable ?? 0), 0),
  }
}
