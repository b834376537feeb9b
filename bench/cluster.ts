import { clusterUnavailable, LocalCluster } from '../test/e2e/cluster/cluster.ts'
import { Release } from '../test/e2e/cluster/release.ts'
import { machine, median, today } from './lib.ts'

/**
 * What Kubernetes operations cost a party, on the local control plane of the
 * cluster e2e tests (a real kube-apiserver and kube-controller-manager, pods
 * as peer processes in their own network namespaces): the time from each
 * operation until every peer is ready, on one guest list, and every file is
 * healthy again. Three runs each; the medians and the worst.
 */
const RUNS = 3
const FILES = 50

async function timed(what: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now()
  await what()
  return performance.now() - t0
}

export async function clusterBench(): Promise<string> {
  const why = await clusterUnavailable()
  if (why) throw new Error(`the cluster bench cannot run here: ${why}`)
  const cluster = await LocalCluster.start()
  const rows: Record<string, number[]> = {
    install: [],
    podDeleted: [],
    twoDeleted: [],
    podAndVolume: [],
    scaleUp: [],
    scaleDownPerPeer: [],
    rollingRestart: [],
    rollingHandoff: [],
  }
  try {
    for (let r = 0; r < RUNS; r++) {
      const hp = new Release(cluster, `b${r}`)
      rows.install?.push(await timed(() => hp.install('--set', 'rebuildDelayMs=10000')))
      await hp.settled(5, 0)
      const files = await hp.putFiles(FILES)
      await hp.settled(5, files.length)
      rows.podDeleted?.push(
        await timed(async () => {
          await hp.deletePods([`${hp.name}-houseparty-2`])
          await hp.settled(5, files.length)
        }),
      )
      rows.twoDeleted?.push(
        await timed(async () => {
          await hp.deletePods([`${hp.name}-houseparty-1`, `${hp.name}-houseparty-3`])
          await hp.settled(5, files.length)
        }),
      )
      rows.podAndVolume?.push(
        await timed(async () => {
          await cluster.kubectl('-n', hp.namespace, 'delete', 'pvc', `data-${hp.name}-houseparty-4`, '--wait=false')
          await hp.deletePods([`${hp.name}-houseparty-4`], { force: true })
          await hp.settled(5, files.length)
        }),
      )
      rows.scaleUp?.push(
        await timed(async () => {
          await hp.scale(7)
          await hp.settled(7, files.length)
        }),
      )
      const down = await timed(async () => {
        await hp.scale(4)
        await hp.settled(4, files.length)
      })
      rows.scaleDownPerPeer?.push(down / 3)
      await hp.scale(5)
      await hp.settled(5, files.length)
      rows.rollingRestart?.push(
        await timed(async () => {
          await hp.upgrade('--set', 'rebuildDelayMs=10000,logLevel=debug')
          await hp.settled(5, files.length)
        }),
      )
      // The reference, in the same run: the same roll with peers that hand their data off on every stop.
      await hp.upgrade('--set', 'rebuildDelayMs=10000,logLevel=debug,onStop=handoff')
      await hp.settled(5, files.length)
      rows.rollingHandoff?.push(
        await timed(async () => {
          await hp.upgrade('--set', 'rebuildDelayMs=10000,logLevel=info,onStop=handoff')
          await hp.settled(5, files.length)
        }),
      )
      await hp.verify(files)
      await hp.uninstall()
      process.stderr.write(`cluster: run ${r + 1}/${RUNS} done\n`)
    }
  } finally {
    await cluster.stop()
  }
  const ratio = (a: number[] | undefined, b: number[] | undefined): string => `${((100 * median(a ?? [])) / median(b ?? [1])).toFixed(0)}%`
  const s = (xs: number[] | undefined): string => `${(median(xs ?? []) / 1000).toFixed(1)} s (worst ${(Math.max(...(xs ?? [0])) / 1000).toFixed(1)} s)`
  return `## On Kubernetes (local control plane, ${today()})

Machine: ${machine()}. kube-apiserver and kube-controller-manager v1.20.2 (built from Debian's source package), etcd 3.4, the chart
with its defaults but \`rebuildDelayMs=10000\`; pods are peer processes in their own network namespaces, run by the test kubelet
(\`test/e2e/cluster\`). Each figure is from the operation until every peer is ready, on one guest list of all of them, and all
${FILES} files (up to 1 MiB, 2+1) are healthy again on every peer. Median of ${RUNS} runs, and the worst.

| operation | time until the party is whole again |
|---|---|
| \`helm install\` (5 peers, \`--wait\`) | ${s(rows.install)} |
| \`kubectl delete pod\` (it steps out for a restart and comes back on its volume: nothing moved or rebuilt) | ${s(rows.podDeleted)} |
| two pods deleted at once | ${s(rows.twoDeleted)} |
| a pod and its volume lost at once (force-deleted: a new, empty peer; the old one's fragments rebuilt after the 10 s delay) | ${s(rows.podAndVolume)} |
| scale 5 → 7 | ${s(rows.scaleUp)} |
| scale 7 → 4, per peer leaving (each hands its fragments off first) | ${s(rows.scaleDownPerPeer)} |
| \`helm upgrade\`: rolling restart of 5 peers (\`onStop: auto\`: each steps out, nothing moves) | ${s(rows.rollingRestart)} |
| the same with \`onStop: handoff\` (each hands its fragments off before it stops): the reference | ${s(rows.rollingHandoff)} |

A rolling restart with \`onStop: auto\` takes ${ratio(rows.rollingRestart, rows.rollingHandoff)} of the time of one that hands every peer's data off (the cluster test checks that each pod comes back holding its fragments).
`
}
