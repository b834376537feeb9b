import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  concurrentDeaths,
  frozenMinority,
  gracefulLeaves,
  loadedParty,
  newIdentityAtOldAddress,
  type ScenarioResult,
  transientFaults,
} from '../../sim/scenarios.ts'

/**
 * The membership core under the simulator (test/sim): many real cores on a
 * virtual clock, faults from a seed. HOUSEPARTY_SIM_SEEDS sets how many seeds
 * each scenario runs (default below); HOUSEPARTY_SIM_SEED=N replays one.
 * A failure prints the seed, where every peer stood and the trace up to it.
 */
const only = process.env.HOUSEPARTY_SIM_SEED === undefined ? undefined : Number(process.env.HOUSEPARTY_SIM_SEED)
const count = Number(process.env.HOUSEPARTY_SIM_SEEDS ?? 200)
const seeds = only === undefined ? Array.from({ length: count }, (_, i) => 1 + i) : [only]

function runSeeds(name: string, scenario: (seed: number, validate: boolean) => ScenarioResult, seedsHere = seeds): ScenarioResult[] {
  const results: ScenarioResult[] = []
  for (const seed of seedsHere) {
    try {
      // Every tenth seed also checks that each datagram the cores send is valid on the wire.
      results.push(scenario(seed, seed % 10 === 0))
    } catch (err) {
      assert.fail(`${name}, seed ${seed} (replay: HOUSEPARTY_SIM_SEED=${seed} node --test ${import.meta.filename}):\n${(err as Error).message}`)
    }
  }
  const worst = Math.max(...results.map((r) => r.convergeMs))
  console.log(`# ${name}: ${results.length} seeds, worst convergence after faults stop ${(worst / 1000).toFixed(1)} s of virtual time`)
  return results
}

describe('membership simulator: agreement, quorum, convergence, no reachable guest removed', () => {
  it('transient faults: crashes, restarts at new addresses, pauses, starvation, partitions, lossy links', () => {
    runSeeds('transient faults', transientFaults)
  })

  it('up to half minus one of the guests die at once, the coordinator often among them', () => {
    const results = runSeeds('concurrent deaths', concurrentDeaths)
    assert.ok(
      results.some((r) => /^[2-9] of/.test(r.kind)),
      'some seeds kill more than one guest at once',
    )
  })

  it('a frozen minority is removed by the awake majority and rejoins with its identity', () => {
    runSeeds('frozen minority', frozenMinority)
  })

  it('guests back empty at their old address (a new identity at an old name) replace the old entries', () => {
    runSeeds('new identity at an old address', newIdentityAtOldAddress, seeds.slice(0, Math.max(1, Math.floor(seeds.length / 3))))
  })

  it('guests leaving on purpose, the coordinator among them, down to the last one', () => {
    runSeeds('graceful leaves', gracefulLeaves, seeds.slice(0, Math.max(1, Math.floor(seeds.length / 3))))
  })

  it('under CPU starvation and stalls of up to a second, no live guest is voted out', () => {
    const results = runSeeds('loaded party', loadedParty, seeds.slice(0, Math.max(1, Math.floor(seeds.length / 3))))
    const suspected = results.reduce((n, r) => n + (r.events.get('suspected') ?? 0), 0)
    console.log(`# loaded party: ${suspected} suspicions, all cleared without a removal`)
  })
})
