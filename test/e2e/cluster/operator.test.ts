import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { HouseParty, PartyCrasher } from '../../../src/operator/index.ts'
import { waitFor } from '../../helpers/wait.ts'
import { clusterUnavailable, LocalCluster } from './cluster.ts'
import { Release, type Stored } from './release.ts'

/**
 * The operator on the local Kubernetes control plane (see cluster.test.ts):
 * installed by the chart with two replicas, reaching the API server from
 * its pods with its own ServiceAccount and Role, and the party through its
 * Service. PartyCrasher experiments and HouseParty scaling (64 MiB volumes,
 * so a few files make a measurable fill), with every file read back after each.
 */
const skip = await clusterUnavailable()
const NS = 'op'
const STS = `${NS}-houseparty`

describe('the operator on a local Kubernetes control plane', { skip, timeout: 60 * 60_000 }, () => {
  let cluster: LocalCluster
  let hp: Release
  let files: Stored[] = []
  const watchers = new Set<() => Promise<number>>()

  const get = async <T>(kind: string, name: string): Promise<T> => JSON.parse(await cluster.kubectl('-n', NS, 'get', kind, name, '-o', 'json')) as T
  const apply = async (name: string, doc: object): Promise<void> => {
    const file = join(cluster.dir, `${name}.json`)
    await writeFile(file, JSON.stringify(doc))
    await cluster.kubectl('-n', NS, 'apply', '-f', file)
  }
  const crasher = (name: string, spec: Partial<PartyCrasher['spec']>) =>
    apply(name, { apiVersion: 'houseparty.dev/v1alpha1', kind: 'PartyCrasher', metadata: { name, namespace: NS }, spec: { statefulSet: STS, ...spec } })
  const operatorPods = async (): Promise<{ name: string; uid: string; ready: boolean }[]> => {
    const list = JSON.parse(await cluster.kubectl('-n', NS, 'get', 'pods', '-l', 'app.kubernetes.io/name=houseparty-operator', '-o', 'json')) as {
      items: { metadata: { name: string; uid: string; deletionTimestamp?: string }; status: { conditions?: { type: string; status: string }[] } }[]
    }
    return list.items
      .filter((p) => !p.metadata.deletionTimestamp)
      .map((p) => ({ name: p.metadata.name, uid: p.metadata.uid, ready: p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false }))
  }
  const leader = async (): Promise<string | undefined> => (await get<{ spec: { holderIdentity?: string } }>('lease', `${STS}-operator`)).spec.holderIdentity
  const podIp = async (name: string): Promise<string> => (await get<{ status: { podIP: string } }>('pod', name)).status.podIP
  const operatorMetric = async (pod: string, metric: string): Promise<number> => {
    const text = (await cluster.fetch(`http://${await podIp(pod)}:8080/metrics`)).body.toString()
    let sum = 0
    for (const m of text.matchAll(new RegExp(`^${metric}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1])
    return sum
  }
  const events = async (kind: string, name: string, reason: string): Promise<string[]> => {
    const selector = `involvedObject.kind=${kind === 'houseparty' ? 'HouseParty' : 'PartyCrasher'},involvedObject.name=${name},reason=${reason}`
    const list = JSON.parse(await cluster.kubectl('-n', NS, 'get', 'events', '--field-selector', selector, '-o', 'json')) as {
      items: { message: string; firstTimestamp: string; metadata: { creationTimestamp: string } }[]
    }
    return list.items.sort((a, b) => a.metadata.creationTimestamp.localeCompare(b.metadata.creationTimestamp)).map((e) => e.message)
  }
  const crashedEvents = (name: string): Promise<string[]> => events('partycrasher', name, 'Crashed')
  /** Watches the peer pods; stop() says how many were made anew (one per pod deleted). */
  const watchChurn = (): { stop: () => Promise<number>; mostLeaving: () => number } => {
    const initial = new Set<string>()
    const seen = new Set<string>()
    let leaving = 0
    let running = true
    let samples = 0
    const loop = (async () => {
      let first = true
      while (running) {
        // The API server may be down a moment (one test restarts it): then look again.
        const raw = await cluster.kubectl('-n', NS, 'get', 'pods', '-l', 'app.kubernetes.io/name=houseparty', '-o', 'json').catch(() => undefined)
        if (raw !== undefined) {
          const list = JSON.parse(raw) as { items: { metadata: { uid: string; name: string; deletionTimestamp?: string } }[] }
          const peers = list.items.filter((p) => !p.metadata.name.includes('-test-'))
          for (const p of peers) (first ? initial : seen).add(p.metadata.uid)
          leaving = Math.max(leaving, peers.filter((p) => p.metadata.deletionTimestamp).length)
          first = false
          samples++
        }
        await new Promise((r) => setTimeout(r, 200))
      }
    })()
    const stop = async (): Promise<number> => {
      running = false
      await loop
      // A watcher that never got an answer would count no churn and prove nothing.
      assert.ok(samples >= 2, `the pod watcher listed the pods while the test ran (${samples} answers)`)
      return [...seen].filter((u) => !initial.has(u)).length
    }
    // A test that fails half-way still stops its watcher (else the loop keeps the test run alive).
    watchers.add(stop)
    return { stop, mostLeaving: () => leaving }
  }
  /** Waits until PartyCrasher `name` is in round `round` (or later). */
  const underWay = (name: string, round: number, timeoutMs: number): Promise<true> =>
    waitFor(`${name}: round ${round} to be under way`, async () => ((await get<PartyCrasher>('partycrasher', name)).status?.current?.round ?? 0) >= round, {
      timeoutMs,
      intervalMs: 250,
    })
  const finished = (name: string, timeoutMs = 15 * 60_000): Promise<PartyCrasher> =>
    waitFor(
      `PartyCrasher ${name} to finish`,
      async () => {
        const pc = await get<PartyCrasher>('partycrasher', name)
        return pc.status?.phase === 'Completed' || pc.status?.phase === 'Failed' ? pc : undefined
      },
      { timeoutMs, intervalMs: 1_000 },
    ) as Promise<PartyCrasher>

  before(async () => {
    cluster = await LocalCluster.start()
    hp = new Release(cluster, NS)
    await hp.install(
      '--set',
      'rebuildDelayMs=10000,persistence.size=64Mi,operator.enabled=true,operator.replicas=2,operator.leaseDurationMs=6000,operator.resyncMs=3000,operator.resources.requests.cpu=10m,operator.resources.requests.memory=32Mi',
    )
    await hp.settled(5, 0)
    files = await hp.putFiles(30)
    await hp.settled(5, files.length)
    await waitFor(
      'both operator replicas ready, one holding the Lease',
      async () => {
        const pods = await operatorPods()
        const holder = await leader().catch(() => undefined)
        return pods.length === 2 && pods.every((p) => p.ready) && pods.some((p) => p.name === holder)
      },
      { timeoutMs: 5 * 60_000, intervalMs: 1_000 },
    )
  })

  after(async () => {
    for (const stop of watchers) await stop()
    if (!cluster) return
    await cluster.stop()
    assert.deepEqual(await cluster.leftovers(), [], 'the cluster left nothing behind')
  })

  it('a PartyCrasher deleting a pod for 5 rounds: every round timed, 0 files lost or unreadable; only the leader acts', async () => {
    const churn = watchChurn()
    await crasher('five-deletes', { action: 'DeletePod', count: 1, rounds: 5, intervalSeconds: 0, sampleFiles: 10 })
    const pc = await finished('five-deletes')
    assert.equal(await churn.stop(), 5, 'five pods deleted, one per round')
    assert.equal(pc.status?.phase, 'Completed', pc.status?.message)
    const rounds = pc.status?.rounds ?? []
    assert.deepEqual(
      rounds.map((r) => r.round),
      [1, 2, 3, 4, 5],
    )
    for (const r of rounds) {
      assert.equal(r.outcome, 'Recovered')
      assert.ok((r.deathDeclaredSeconds ?? -1) >= 0 && (r.fullRedundancySeconds ?? -1) >= (r.deathDeclaredSeconds ?? 0), JSON.stringify(r))
      assert.equal(r.filesChecked, 10)
      assert.equal(r.filesUnreadable, 0)
      assert.equal(r.filesLost, 0)
    }
    assert.equal(pc.status?.summary?.filesLost, 0)
    console.log(
      `# PartyCrasher DeletePod ×5: ${pc.status?.message}; per round ${rounds.map((r) => `${r.deathDeclaredSeconds}/${r.fullRedundancySeconds} s`).join(', ')}`,
    )
    const holder = await leader()
    for (const p of await operatorPods()) {
      const decisions = await operatorMetric(p.name, 'houseparty_operator_decisions_total')
      if (p.name === holder) assert.ok(decisions > 0, 'the leader decided')
      else assert.equal(decisions, 0, `${p.name} is not the leader and decided nothing`)
    }
    await hp.verify(files)
  })

  it('a PartyCrasher asking for m+1 peers at once without allowDataLoss is refused in status, and crashes nothing', async () => {
    const before = (await hp.pods()).map((p) => p.uid).sort()
    await crasher('too-many', { action: 'DeletePod', count: 2, rounds: 1 })
    const pc = (await waitFor(
      'the refusal',
      async () => {
        const x = await get<PartyCrasher>('partycrasher', 'too-many')
        return x.status?.phase === 'Refused' ? x : undefined
      },
      { timeoutMs: 2 * 60_000, intervalMs: 500 },
    )) as PartyCrasher
    assert.match(pc.status?.message ?? '', /count 2 is more than m = 1/)
    assert.deepEqual((await hp.pods()).map((p) => p.uid).sort(), before, 'no pod was touched')
    await cluster.kubectl('-n', NS, 'delete', 'partycrasher', 'too-many')
  })

  it('the operator killed mid-experiment: the other replica takes over and resumes, without repeating a round', async () => {
    const churn = watchChurn()
    await crasher('resumed', { action: 'DeletePod', count: 1, rounds: 3, intervalSeconds: 0, sampleFiles: 5 })
    await underWay('resumed', 2, 10 * 60_000)
    const killed = (await leader()) as string
    await cluster.kubectl('-n', NS, 'delete', 'pod', killed, '--grace-period=0', '--force', '--wait=false')
    const pc = await finished('resumed')
    assert.equal(pc.status?.phase, 'Completed', pc.status?.message)
    assert.deepEqual(
      pc.status?.rounds?.map((r) => r.round),
      [1, 2, 3],
    )
    assert.notEqual(await leader(), killed, 'another replica leads')
    assert.equal(await churn.stop(), 3, `one pod deleted per round, none twice (events: ${(await crashedEvents('resumed')).join(' | ')})`)
    await hp.settled(5, files.length)
    await hp.verify(files)
  })

  it('the API server restarted mid-experiment: the operator watches again, keeps or retakes its Lease, and finishes', async () => {
    const churn = watchChurn()
    await crasher('api-restart', { action: 'DeletePod', count: 1, rounds: 2, intervalSeconds: 0, sampleFiles: 5 })
    await underWay('api-restart', 1, 5 * 60_000)
    await cluster.controlPlane.restart('kube-apiserver')
    const pc = await finished('api-restart')
    assert.equal(pc.status?.phase, 'Completed', pc.status?.message)
    assert.deepEqual(
      pc.status?.rounds?.map((r) => [r.round, r.outcome, r.filesLost, r.filesUnreadable]),
      [
        [1, 'Recovered', 0, 0],
        [2, 'Recovered', 0, 0],
      ],
    )
    assert.equal(await churn.stop(), 2, 'one pod deleted per round')
    await hp.settled(5, files.length)
  })

  it('a PartyCrasher deleting a pod and its volume: a new, empty peer takes its place, 0 files lost', async () => {
    await crasher('pod-and-volume', { action: 'DeletePodAndVolume', count: 1, rounds: 1, sampleFiles: 30 })
    const pc = await finished('pod-and-volume')
    assert.equal(pc.status?.phase, 'Completed', pc.status?.message)
    const [round] = pc.status?.rounds ?? []
    assert.deepEqual([round?.outcome, round?.filesChecked, round?.filesUnreadable, round?.filesLost], ['Recovered', 30, 0, 0])
    const target = round?.targets[0] as string
    // A new, empty peer on a new claim (the old one handed its fragments off as it left).
    const claim = await get<{ metadata: { creationTimestamp: string } }>('pvc', `data-${target}`)
    assert.ok(Date.parse(claim.metadata.creationTimestamp) >= Date.parse(round?.startedAt as string) - 1_000, 'its claim was made anew')
    await hp.settled(5, files.length)
    await hp.verify(files)
  })

  it('PartyCrasher KillProcess, Freeze and CutNetwork (exec and NetworkPolicy): each timed, undone, no pod replaced, 0 files lost', async () => {
    const churn = watchChurn()
    const restarts = async (pod: string): Promise<number> =>
      (await get<{ status: { containerStatuses?: { restartCount: number }[] } }>('pod', pod)).status.containerStatuses?.[0]?.restartCount ?? 0
    const holding = (name: string): Promise<PartyCrasher> =>
      waitFor(
        `${name} to hold its fault`,
        async () => {
          const pc = await get<PartyCrasher>('partycrasher', name)
          return pc.status?.current?.stage === 'Holding' ? pc : undefined
        },
        { timeoutMs: 10 * 60_000, intervalMs: 200 },
      ) as Promise<PartyCrasher>
    const clean = (pc: PartyCrasher): void => {
      assert.equal(pc.status?.phase, 'Completed', pc.status?.message)
      const [r] = pc.status?.rounds ?? []
      assert.deepEqual([r?.outcome, r?.filesUnreadable, r?.filesLost], ['Recovered', 0, 0], JSON.stringify(r))
    }
    const before = new Map((await hp.pods()).map((p) => [p.name, p.uid]))
    const restartsBefore = new Map(await Promise.all([...before.keys()].map(async (p) => [p, await restarts(p)] as const)))

    // The peer SIGKILLed inside its container (exec `houseparty signal KILL`): the container restarts, the pod stays.
    await crasher('kill', { action: 'KillProcess', count: 1, rounds: 1, sampleFiles: 10 })
    const killed = await finished('kill')
    clean(killed)
    const killedPod = killed.status?.rounds?.[0]?.targets[0] as string
    assert.equal(await restarts(killedPod), (restartsBefore.get(killedPod) ?? 0) + 1, 'its container restarted once')
    assert.ok((killed.status?.rounds?.[0]?.deathDeclaredSeconds ?? -1) >= 0, 'the party noticed the restart')
    await hp.settled(5, files.length)

    // Frozen (SIGSTOP) for 6 s, as a throttled or stalled node does, then thawed.
    await crasher('freeze', { action: 'Freeze', durationSeconds: 6, count: 1, rounds: 1, sampleFiles: 10 })
    const frozenPod = (await holding('freeze')).status?.current?.targets[0]?.pod as string
    const pid = cluster.kubelet?.process(NS, frozenPod)?.pid as number
    const state = async (): Promise<string> => {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(async (err: Error) => {
        // The peer process went away: say why (its exit and last log lines) rather than just ENOENT.
        const log = (await cluster.kubelet?.containerLog(NS, frozenPod)) ?? ''
        throw new Error(`the frozen peer (pid ${pid}) is gone (${err.message}); ${log}`)
      })
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] as string
    }
    assert.equal(await state(), 'T', 'the peer process is stopped while the round holds')
    const frozen = await finished('freeze')
    clean(frozen)
    assert.notEqual(await state(), 'T', 'and running again after')
    await hp.settled(5, files.length)

    // Cut off by a deny-all NetworkPolicy for 8 s: the party declares it dead; then it rejoins with its data.
    await crasher('cut', { action: 'CutNetwork', durationSeconds: 8, count: 1, rounds: 1, sampleFiles: 10 })
    const cutPod = (await holding('cut')).status?.current?.targets[0]?.pod as string
    assert.match(await cluster.kubectl('-n', NS, 'get', 'networkpolicy', '-o', 'name'), new RegExp(`cut-cut-${cutPod}`))
    // Labelled out of the chart's own NetworkPolicy for the round: policies add up, and that one admits the peers.
    const cutLabel = (): Promise<string> => cluster.kubectl('-n', NS, 'get', 'pod', cutPod, '-o', 'jsonpath={.metadata.labels.houseparty\\.dev/cut-off}')
    assert.equal(await cutLabel(), 'cut')
    const cut = await finished('cut')
    clean(cut)
    assert.ok((cut.status?.rounds?.[0]?.deathDeclaredSeconds ?? 0) > 0, `the party declared the cut-off peer dead: ${JSON.stringify(cut.status?.rounds)}`)
    const policies = (await cluster.kubectl('-n', NS, 'get', 'networkpolicy', '-o', 'name')).trim().split('\n')
    assert.deepEqual(policies, [`networkpolicy.networking.k8s.io/${NS}-houseparty`], 'the cut is gone; the chart’s own policy stays')
    assert.equal(await cutLabel(), '', 'and so is the label')

    assert.equal(await churn.stop(), 0, 'no pod was deleted or replaced')
    assert.deepEqual(new Map((await hp.pods()).map((p) => [p.name, p.uid])), before)
    for (const pc of [killed, frozen, cut]) {
      const r = pc.status?.rounds?.[0]
      console.log(
        `# PartyCrasher ${pc.spec.action}: declared dead after ${r?.deathDeclaredSeconds ?? '(never)'} s, full redundancy after ${r?.fullRedundancySeconds} s`,
      )
    }
    await hp.settled(5, files.length)
    await hp.verify(files)
  })

  it('a HouseParty scales 6 → 4 one peer at a time, reclaims the volumes, and loses nothing', async () => {
    await hp.scale(6)
    await hp.settled(6, files.length)
    const churn = watchChurn()
    await apply('hp', {
      apiVersion: 'houseparty.dev/v1alpha1',
      kind: 'HouseParty',
      metadata: { name: 'hp', namespace: NS },
      spec: { statefulSet: STS, minGuests: 4, maxGuests: 4, targetFill: 0.7, reclaim: 'Delete' },
    })
    const done = (await waitFor(
      'the HouseParty to settle at 4 guests with the volumes of 4 and 5 reclaimed',
      async () => {
        const h = await get<HouseParty>('houseparty', 'hp')
        const claims = await cluster.kubectl('-n', NS, 'get', 'pvc', '-o', 'name')
        return h.status?.guests === 4 && h.status.replicas === 4 && h.status.degraded === 0 && !/-[45]$/m.test(claims) ? h : undefined
      },
      { timeoutMs: 10 * 60_000, intervalMs: 1_000 },
    )) as HouseParty
    await churn.stop()
    assert.ok(churn.mostLeaving() <= 1, 'never two peers leaving at once')
    const scaled = await events('houseparty', 'hp', 'Scaled')
    assert.deepEqual(
      scaled.map((m) => /to (\d+) peers/.exec(m)?.[1]),
      ['5', '4'],
      `one peer at a time: ${scaled.join(' | ')}`,
    )
    assert.match(done.status?.lastDecision?.action ?? '', /Hold|Wait|DeleteClaim/)
    await hp.settled(4, files.length)
    await hp.verify(files)
  })

  it('a HouseParty scales up when fill passes its target, as far as the target needs', async () => {
    await cluster.kubectl('-n', NS, 'patch', 'houseparty', 'hp', '--type', 'merge', '-p', JSON.stringify({ spec: { maxGuests: 6, targetFill: 0.1 } }))
    const before = (await get<HouseParty>('houseparty', 'hp')).status?.fill ?? 0
    // More data until the 4 peers' 64 MiB volumes are over 10% full.
    const more: Stored[] = []
    for (let round = 0; round < 10 && ((await get<HouseParty>('houseparty', 'hp')).status?.replicas ?? 4) === 4; round++) {
      const seen = (await get<HouseParty>('houseparty', 'hp')).status?.fill ?? 0
      more.push(...(await hp.putFiles(8, `fill-${round}`)))
      // The operator looks again every 3 s (operator.resyncMs) and guests report what they hold within a second:
      // put more only once it has seen these (its fill went up), or has already scaled.
      await waitFor(
        'the operator to see the new files',
        async () => {
          const h = await get<HouseParty>('houseparty', 'hp')
          return (h.status?.replicas ?? 4) !== 4 || (h.status?.fill ?? 0) > seen
        },
        { timeoutMs: 2 * 60_000, intervalMs: 500 },
      )
    }
    files.push(...more)
    const done = (await waitFor(
      'the HouseParty to scale up and settle',
      async () => {
        const h = await get<HouseParty>('houseparty', 'hp')
        return (h.status?.replicas ?? 0) > 4 && h.status?.guests === h.status?.replicas && h.status?.degraded === 0 && h.status.lastDecision?.action === 'Hold'
          ? h
          : undefined
      },
      { timeoutMs: 10 * 60_000, intervalMs: 1_000 },
    )) as HouseParty
    const up = (await events('houseparty', 'hp', 'Scaled')).filter((m) => /above target/.test(m))
    assert.ok(up.length >= 1, 'a Scaled event says why')
    assert.ok((done.status?.fill ?? 1) <= 0.1, `fill back under the target: ${done.status?.fill} (was ${before} before the puts)`)
    assert.ok((done.status?.replicas ?? 0) <= 6, 'never past maxGuests')
    await hp.settled(done.status?.replicas as number, files.length)
    await hp.verify(files)
  })
})
