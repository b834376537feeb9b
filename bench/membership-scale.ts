import { formParty } from '../test/sim/scenarios.ts'
import { type SimPeer, Simulator } from '../test/sim/simulator.ts'
import { machine, today } from './lib.ts'

/**
 * The membership protocol's cost at scale, measured on the simulator
 * (test/sim): real membership cores on a virtual clock, 0.1–1 ms one-way
 * latency, no loss. Virtual time says how long the protocol takes; datagram
 * counts say what it costs each peer. Wall-clock figures are what the
 * simulation took on this machine, not what a party would.
 */
interface ScaleRow {
  n: number
  formMs: number
  steadySent: number
  steadyReceivedMax: number
  deathMs: number
  deathDatagrams: number
  coordinatorDeathMs: number
  joinMs: number
  wallMs: number
}

function measure(n: number): ScaleRow {
  const wall = performance.now()
  const sim = new Simulator({ seed: n, network: { minLatencyMs: 0.1, maxLatencyMs: 1 } })
  // Every peer starts within 2 s and knocks on every pod of the Service, as a StatefulSet with parallel pod management does.
  const peers = formParty(sim, n, 3_600_000)
  const founder = peers[0] as SimPeer
  const formMs = sim.now

  sim.runFor(5_000)
  sim.resetCounters()
  const steadyMs = 10_000
  sim.runFor(steadyMs)
  const steadySent = peers.reduce((a, p) => a + p.sent, 0) / n / (steadyMs / 1000)
  const steadyReceivedMax = Math.max(...peers.map((p) => p.received)) / (steadyMs / 1000)

  const coordinatorId = founder.core?.view?.guests[0]?.id
  const victim = peers.find((p) => p.id !== coordinatorId && p !== founder) as SimPeer
  sim.resetCounters()
  sim.crash(victim)
  let alive = peers.filter((p) => p !== victim)
  const deathMs = sim.runUntilTrue('a death to be agreed', () => sim.converged(alive), 600_000, 10)
  // What the removal cost on top of the pings that flow anyway: the vote, the view change, the catching up.
  const deathDatagrams = [...sim.byType].reduce((n, [type, count]) => (type === 'ping' || type === 'pong' ? n : n + count), 0)

  const coordinator = alive.find((p) => p.id === coordinatorId) as SimPeer
  sim.crash(coordinator)
  alive = alive.filter((p) => p !== coordinator)
  const coordinatorDeathMs = sim.runUntilTrue('the coordinator’s death to be agreed', () => sim.converged(alive), 600_000, 10)

  const newcomer = sim.addPeer(() => alive.map((p) => p.address))
  const joinMs = sim.runUntilTrue('a newcomer to be admitted', () => sim.converged([...alive, newcomer]), 600_000, 10)
  return { n, formMs, steadySent, steadyReceivedMax, deathMs, deathDatagrams, coordinatorDeathMs, joinMs, wallMs: performance.now() - wall }
}

export async function membershipScaleBench(sizes = [10, 100, 1000]): Promise<string> {
  const rows: ScaleRow[] = []
  for (const n of sizes) {
    rows.push(measure(n))
    process.stderr.write(`membership-scale: ${n} peers done\n`)
  }
  const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`
  return `## Membership at scale (simulated, ${today()})

Measured with the membership simulator (\`test/sim\`): the real membership cores, default timings, on a virtual clock with
0.1–1 ms one-way latency and no loss. Times are virtual (what the protocol takes); datagrams are counted per peer.
Machine for the wall-clock column: ${machine()}.

| peers | party formed (all start within 2 s) | datagrams sent per peer per s, steady | most received by one peer per s | SIGKILL → removed everywhere | datagrams of that removal (vote, view change), whole party | coordinator SIGKILLed → removed | newcomer admitted | simulation wall clock |
|---|---|---|---|---|---|---|---|---|
${rows.map((r) => `| ${r.n} | ${s(r.formMs)} | ${r.steadySent.toFixed(0)} | ${r.steadyReceivedMax.toFixed(0)} | ${s(r.deathMs)} | ${Math.round(r.deathDatagrams).toLocaleString('en-US')} | ${s(r.coordinatorDeathMs)} | ${s(r.joinMs)} | ${s(r.wallMs)} |`).join('\n')}

Up to 16 other guests everyone pings everyone every 200 ms; beyond that each guest pings 16 a round (shuffled round-robin)
plus any that owe it an answer, so the steady cost per peer stops growing with the party. What still grows with it is
each change of the guest list: the coordinator asks every staying guest twice (prepare, accept) and tells everyone (commit),
and a ping-vote asks every guest, so one removal costs O(n) datagrams at the coordinator and at the peer that noticed.
`
}
