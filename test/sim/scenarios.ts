import { isQuorum } from '../../src/peer/membership/index.ts'
import { InvariantViolation, rng, type SimPeer, Simulator } from './simulator.ts'

/**
 * Fault scenarios for the membership simulator, each a function of a seed.
 * A scenario forms a party, injects faults, stops them, and checks that the
 * party converges; the simulator checks the safety invariants throughout.
 */

export interface ScenarioResult {
  seed: number
  kind: string
  peers: number
  /** Virtual ms from the last fault ending to every running peer agreeing on one list of exactly them. */
  convergeMs: number
  events: Map<string, number>
}

/** Virtual time allowed to converge once faults stop: backoffs, rejoins and removals all fit well inside it. */
export const CONVERGE_WITHIN_MS = 60_000

const pick = <T>(sim: Simulator, items: readonly T[]): T => items[Math.floor(sim.random() * items.length)] as T
const between = (sim: Simulator, lo: number, hi: number): number => lo + sim.random() * (hi - lo)

/**
 * Would the party still have a quorum of its newest list if `peer` were gone
 * for good? (Of two guests, the second alone is not one: a permanent loss
 * there is a party that cannot change its list again, by design.)
 */
function survivesLoss(sim: Simulator, peer: SimPeer): boolean {
  const newest = [...sim.installed.entries()].sort((a, b) => b[0] - a[0])[0]?.[1].view
  if (!newest) return false
  return isQuorum(newest, new Set(newest.guests.filter((g) => g.id !== peer.id).map((g) => g.id)))
}

/** n peers starting within 2 s: peer 0 founds, the others knock on every pod of the "Service" (any peer not crashed). */
export function formParty(sim: Simulator, n: number, withinMs = 30_000): SimPeer[] {
  const founder = sim.addPeer(() => [])
  // Restarts of peer 0 knock too: founding is for its first start only.
  sim.at(sim.now, () => {
    founder.join = () => sim.service()
  })
  const peers = [founder]
  for (let i = 1; i < n; i++) peers.push(sim.addPeer(() => sim.service(), between(sim, 0, 2_000)))
  sim.runUntilTrue('the party to form', () => sim.converged(peers), withinMs, Math.min(100, Math.max(10, n)))
  return peers
}

/**
 * Random transient faults for a while: crashes with restarts (half of them
 * at a new address), pauses, CPU starvation, partitions, lossy and
 * duplicating links. Everything comes back at the end, so the party must
 * converge on all n peers.
 */
export const transientFaults = scenario(transientFaultsRun)

function transientFaultsRun(sim: Simulator, seed: number): ScenarioResult {
  const n = 3 + Math.floor(sim.random() * 6)
  const peers = formParty(sim, n)
  const faultsEnd = sim.now + between(sim, 10_000, 30_000)
  const pending: (() => void)[] = []
  /** Peers whose data dir was lost: they never come back (a new identity has their address). */
  const gone = new Set<SimPeer>()
  while (sim.now < faultsEnd) {
    sim.runFor(between(sim, 200, 4_000))
    const victim = pick(sim, peers)
    const kind = Math.floor(sim.random() * 6)
    const lasting = between(sim, 300, 12_000)
    if (kind === 0 && victim.state === 'running') {
      sim.crash(victim)
      const newAddress = sim.random() < 0.5
      const restart = (): void => {
        if (victim.state === 'crashed' && !gone.has(victim)) sim.restart(victim, newAddress)
      }
      sim.at(sim.now + lasting, restart)
      pending.push(restart)
    } else if (kind === 1 && victim.state === 'running') {
      sim.pause(victim)
      const resume = (): void => sim.resume(victim)
      sim.at(sim.now + lasting, resume)
      pending.push(resume)
    } else if (kind === 2) {
      sim.starve(victim, between(sim, 50, 900))
      const fed = (): void => sim.starve(victim, 0)
      sim.at(sim.now + lasting, fed)
      pending.push(fed)
    } else if (kind === 3) {
      const side = peers.filter(() => sim.random() < 0.5).map((p) => p.index)
      sim.partition([side])
      const heal = (): void => sim.heal()
      sim.at(sim.now + lasting, heal)
      pending.push(heal)
    } else if (kind === 4) {
      // A crash and a quick restart on the old data: the pod restarted.
      sim.crash(victim)
      sim.restart(victim, sim.random() < 0.5)
    } else if (kind === 5 && gone.size === 0 && victim.state === 'running' && survivesLoss(sim, victim)) {
      // Once per run: the pod's volume is lost, and it comes back at its old address as a new, empty guest.
      gone.add(victim)
      sim.crash(victim)
      const fresh = sim.addPeer(() => sim.service(), sim.now + between(sim, 0, 3_000), victim.address)
      sim.trace(`peer ${victim.index} lost its data: peer ${fresh.index} starts at ${victim.address}`)
      peers[peers.indexOf(victim)] = fresh
    }
  }
  // Faults stop: everything that is down comes back.
  sim.runUntil(faultsEnd)
  sim.heal()
  for (const undo of pending) undo()
  for (const p of peers) {
    if (p.state === 'crashed') sim.restart(p)
    if (p.state === 'paused') sim.resume(p)
    sim.starve(p, 0)
  }
  const convergeMs = sim.runUntilTrue('every running peer to agree on one list of all of them', () => sim.converged(peers), CONVERGE_WITHIN_MS)
  return { seed, kind: 'transient faults', peers: n, convergeMs, events: sim.events }
}

/**
 * f < n/2 peers die at the same moment, often the coordinator among them:
 * the survivors remove all of them in one agreed list, and then admit a
 * newcomer.
 */
export const concurrentDeaths = scenario(concurrentDeathsRun)

function concurrentDeathsRun(sim: Simulator, seed: number): ScenarioResult {
  const n = 4 + Math.floor(sim.random() * 6)
  const peers = formParty(sim, n)
  const f = 1 + Math.floor(sim.random() * (Math.ceil(n / 2) - 1))
  const coordinator = peers.find((p) => p.id === peers[0]?.core?.view?.guests[0]?.id) as SimPeer
  const victims = new Set<SimPeer>(sim.random() < 0.6 ? [coordinator] : [])
  while (victims.size < f) victims.add(pick(sim, peers))
  for (const v of victims) sim.crash(v)
  const survivors = peers.filter((p) => !victims.has(p))
  const convergeMs = sim.runUntilTrue(`${survivors.length} survivors to remove ${f} dead`, () => sim.converged(survivors), CONVERGE_WITHIN_MS)
  const newcomer = sim.addPeer(() => survivors.map((p) => p.address))
  sim.runUntilTrue('a newcomer to be admitted after the deaths', () => sim.converged([...survivors, newcomer]), CONVERGE_WITHIN_MS)
  return { seed, kind: `${f} of ${n} dead at once`, peers: n, convergeMs, events: sim.events }
}

/**
 * A minority is frozen (SIGSTOP) long enough to be voted out, the awake
 * majority carries on, and the frozen peers rejoin with their identity
 * when they wake.
 */
export const frozenMinority = scenario(frozenMinorityRun)

function frozenMinorityRun(sim: Simulator, seed: number): ScenarioResult {
  const n = 3 + Math.floor(sim.random() * 6)
  const peers = formParty(sim, n)
  const frozen = new Set<SimPeer>()
  const f = 1 + Math.floor(sim.random() * (Math.ceil(n / 2) - 1))
  while (frozen.size < f) frozen.add(pick(sim, peers))
  for (const p of frozen) sim.pause(p)
  const awake = peers.filter((p) => !frozen.has(p))
  sim.runUntilTrue('the awake majority to remove the frozen', () => sim.converged(awake), CONVERGE_WITHIN_MS)
  for (const p of frozen) sim.resume(p)
  const convergeMs = sim.runUntilTrue('the frozen to rejoin', () => sim.converged(peers), CONVERGE_WITHIN_MS)
  for (const p of frozen) {
    const g = sim.peers[0]?.core?.view?.guests.find((x) => x.id === p.id)
    if (!g || g.incarnation !== p.incarnation) throw new InvariantViolation(`peer ${p.index} did not rejoin with its identity`)
  }
  return { seed, kind: `${f} of ${n} frozen`, peers: n, convergeMs, events: sim.events }
}

/** The network each seed gets: its own loss (0–5%), duplication and latency (up to 20 ms one way). */
function networkFor(seed: number): { loss: number; duplicate: number; minLatencyMs: number; maxLatencyMs: number } {
  const r = rng(seed ^ 0x5bd1e995)
  return { loss: r() * 0.05, duplicate: 0.01, minLatencyMs: 0.1, maxLatencyMs: 1 + r() * 19 }
}

/** A scenario run from a seed (with `validate`, every datagram is also checked on the wire); a failure carries where every peer stood and the trace up to it. */
function scenario(run: (sim: Simulator, seed: number) => ScenarioResult): (seed: number, validate?: boolean) => ScenarioResult {
  return (seed, validate = false) => {
    const sim = new Simulator({ seed, validate, network: networkFor(seed) })
    try {
      return run(sim, seed)
    } catch (err) {
      const e = err instanceof InvariantViolation ? err : new InvariantViolation(`${(err as Error).stack}`)
      e.message = `${e.message}\n--- where each peer stands\n${sim.describe()}\n--- trace (virtual time)\n${sim.traceTail}`
      throw e
    }
  }
}

/**
 * Every peer starved of CPU for a minute (its ticks and message handling
 * late by up to 50–900 ms, at random), and some stalled outright for up to
 * a second at a time: nobody may be voted out, however slow detection gets.
 */
export const loadedParty = scenario(loadedPartyRun)

function loadedPartyRun(sim: Simulator, seed: number): ScenarioResult {
  const n = 3 + Math.floor(sim.random() * 6)
  const peers = formParty(sim, n)
  const epoch = sim.installed.size
  // Half the seeds starve lightly: the peers stay "healthy" (lag under half a silence period), so they do vote on the stalled.
  const worst = sim.random() < 0.5 ? 100 : 900
  for (const p of peers) sim.starve(p, between(sim, 10, worst))
  const end = sim.now + 60_000
  while (sim.now < end) {
    sim.runFor(between(sim, 500, 5_000))
    const victim = pick(sim, peers)
    if (victim.state !== 'running') continue
    // A stall of up to a second (a long GC, a throttled container): the peer must stay.
    sim.pause(victim)
    sim.at(sim.now + between(sim, 100, 1_000), () => sim.resume(victim))
  }
  sim.runUntil(end + 1_000)
  if (sim.installed.size !== epoch)
    throw new InvariantViolation(`the guest list changed under load (${sim.installed.size - epoch} changes): a live guest was voted out`)
  for (const p of peers) sim.starve(p, 0)
  const convergeMs = sim.runUntilTrue('the party to settle after the load', () => sim.converged(peers), CONVERGE_WITHIN_MS)
  return { seed, kind: `${n} peers under load`, peers: n, convergeMs, events: sim.events }
}

/**
 * Guests leave on purpose (SIGTERM), one after another and sometimes two
 * at once, the coordinator among them, down to a single guest: each leave
 * is confirmed, and the rest agree on a list without the leavers.
 */
export const gracefulLeaves = scenario(gracefulLeavesRun)

function gracefulLeavesRun(sim: Simulator, seed: number): ScenarioResult {
  const n = 2 + Math.floor(sim.random() * 6)
  let staying = formParty(sim, n)
  let convergeMs = 0
  while (staying.length > 1) {
    const leavers = new Set<SimPeer>([pick(sim, staying)])
    if (staying.length > 3 && sim.random() < 0.3) leavers.add(pick(sim, staying))
    // Leaving for good and stepping out for a restart take the same path; the lists must say which it was.
    const reasons = new Map([...leavers].map((p) => [p, sim.random() < 0.5 ? ('leave' as const) : ('restart' as const)]))
    for (const [p, reason] of reasons) sim.leave(p, reason)
    staying = staying.filter((p) => !leavers.has(p))
    const rest = staying
    sim.runUntilTrue('the leavers to be let go', () => [...leavers].every((p) => sim.statusOf(p) === 'left'), sim.timings.leaveTimeoutMs)
    for (const [p, reason] of reasons) {
      const recorded = sim.removedFor.get(p.id)
      if (recorded !== reason) throw new InvariantViolation(`peer ${p.index} left for ${reason}, the list says ${recorded}`)
    }
    for (const p of leavers) sim.crash(p)
    convergeMs = Math.max(
      convergeMs,
      sim.runUntilTrue('the rest to agree without the leavers', () => sim.converged(rest), CONVERGE_WITHIN_MS),
    )
  }
  return { seed, kind: `${n} guests leaving`, peers: n, convergeMs, events: sim.events }
}

/**
 * Guests lose their data dir and come back at once at the same address as a
 * new identity (a pod deleted with its volume: same DNS name, empty disk).
 * Whoever answers at the old address now is not the old guest: the old
 * entries must still be voted out, and the newcomers admitted.
 */
export const newIdentityAtOldAddress = scenario((sim, seed) => {
  const n = 3 + Math.floor(sim.random() * 6)
  const peers = formParty(sim, n)
  const f = 1 + Math.floor(sim.random() * (Math.ceil(n / 2) - 1))
  const lost = new Set<SimPeer>()
  while (lost.size < f) lost.add(pick(sim, peers))
  const fresh: SimPeer[] = []
  for (const p of lost) {
    sim.crash(p)
    fresh.push(sim.addPeer(() => sim.service(), sim.now + between(sim, 0, 3_000), p.address))
  }
  const everyone = [...peers.filter((p) => !lost.has(p)), ...fresh]
  sim.runFor(3_000)
  const convergeMs = sim.runUntilTrue('the lost to be replaced by the newcomers at their addresses', () => sim.converged(everyone), CONVERGE_WITHIN_MS)
  return { seed, kind: `${f} of ${n} back empty at their old address`, peers: n, convergeMs, events: sim.events }
})
