import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { V1Pod } from '@kubernetes/client-node'
import type { PartyCrasher } from '../../../src/operator/index.ts'
import { waitFor } from '../../helpers/wait.ts'
import { clusterUnavailable, LocalCluster, type TestNode } from './cluster.ts'
import { Release, type Stored } from './release.ts'

/**
 * Failure domains on a cluster of four test nodes in three zones (each a
 * test kubelet with its own node name and topology.kubernetes.io/zone
 * label). There is no kube-scheduler: the test assigns each peer pod its
 * node by release and ordinal, as a spreading scheduler would, and a
 * cordoned node takes none (its pods stay Pending, as on a node that is
 * gone). The peers read their zone from their Node through the chart's
 * ClusterRole. A node, and then a zone, is lost with every pod and volume
 * on it: every file reads back, and the party is whole again after.
 */
const skip = await clusterUnavailable()

const ZONE = 'topology.kubernetes.io/zone'
const NODES: TestNode[] = [
  { name: 'node-a1', labels: { [ZONE]: 'zone-a' } },
  { name: 'node-b1', labels: { [ZONE]: 'zone-b' } },
  { name: 'node-c1', labels: { [ZONE]: 'zone-c' } },
  { name: 'node-c2', labels: { [ZONE]: 'zone-c' } },
]
/** Where each release's pod of each ordinal runs: 2+1 on 6 peers over 3 nodes (2 each); 4+2 on 6 peers over 4 nodes in 3 zones (2 per zone). */
const PLACES: Record<string, string[]> = {
  nodes: ['node-a1', 'node-b1', 'node-c1', 'node-a1', 'node-b1', 'node-c1'],
  zones: ['node-a1', 'node-b1', 'node-c1', 'node-c2', 'node-a1', 'node-b1'],
}

function assign(pod: V1Pod): string {
  const ordinal = /-(\d+)$/.exec(pod.metadata?.name ?? '')?.[1]
  const places = PLACES[pod.metadata?.namespace ?? '']
  return (ordinal !== undefined && places?.[Number(ordinal) % places.length]) || 'node-a1'
}

interface Listed {
  name: string
  holders: { guest: string }[]
}

describe('failure domains on a local Kubernetes control plane with four nodes in three zones', { skip, timeout: 60 * 60_000 }, () => {
  let cluster: LocalCluster

  before(async () => {
    cluster = await LocalCluster.start({ nodes: NODES, assign })
  })

  after(async () => {
    if (!cluster) return
    await cluster.stop()
    assert.deepEqual(await cluster.leftovers(), [], 'the cluster left nothing behind')
  })

  /** Each guest's node and zone as it announced them, by guest id. */
  const domainsOf = async (hp: Release): Promise<Map<string, { node: string; zone: string }>> => {
    const { guests } = await hp.json<{ guests: { id: string; domains: { node?: string; zone?: string } }[] }>(`${hp.api}/guests`)
    return new Map(guests.map((g) => [g.id, { node: g.domains.node ?? '?', zone: g.domains.zone ?? '?' }]))
  }
  /** Where each file under `prefix` has its fragments: the node and the zone of each holder (its id when unknown). */
  const placements = async (hp: Release, prefix: string): Promise<{ name: string; nodes: string[]; zones: string[] }[]> => {
    const where = await domainsOf(hp)
    const { files } = await hp.json<{ files: Listed[] }>(`${hp.api}/files?prefix=${prefix}/&limit=1000`)
    return files.map((f) => ({
      name: f.name,
      nodes: f.holders.map((h) => where.get(h.guest)?.node ?? h.guest),
      zones: f.holders.map((h) => where.get(h.guest)?.zone ?? h.guest),
    }))
  }
  /** The most fragments of any one file on one node and in one zone. */
  const spreadOf = (placed: Awaited<ReturnType<typeof placements>>): { node: number; zone: number } => {
    const most = (keys: string[]): number => Math.max(...[...new Set(keys)].map((k) => keys.filter((x) => x === k).length))
    let node = 0
    let zone = 0
    for (const f of placed) {
      node = Math.max(node, most(f.nodes))
      zone = Math.max(zone, most(f.zones))
    }
    return { node, zone }
  }
  const worstSpread = async (hp: Release, prefix: string): Promise<{ node: number; zone: number }> => spreadOf(await placements(hp, prefix))
  /** The files with more than one fragment on a node, and where their fragments are: what a timeout reports. */
  const crowded = (placed: Awaited<ReturnType<typeof placements>>): string => {
    const worse = placed.filter((f) => new Set(f.nodes).size < f.nodes.length)
    return `${worse.length} crowded: ${worse
      .slice(0, 5)
      .map((f) => `${f.name} on ${f.nodes.join('/')}`)
      .join(', ')}`
  }
  const podsOn = async (namespace: string, nodes: string[]): Promise<string[]> => {
    const list = JSON.parse(await cluster.kubectl('-n', namespace, 'get', 'pods', '-l', 'app.kubernetes.io/name=houseparty', '-o', 'json')) as {
      items: { metadata: { name: string }; spec: { nodeName?: string } }[]
    }
    return list.items.filter((p) => nodes.includes(p.spec.nodeName ?? '')).map((p) => p.metadata.name)
  }
  /**
   * A node (or several) lost with its disks: cordoned (nothing comes back
   * there), its claims and pods force-deleted. Then what an administrator
   * does on this control plane's version: once the old claims are gone,
   * each pod the StatefulSet made again is deleted once more, so it is made
   * with a new claim. Before Kubernetes 1.27 (kubernetes#74374, #113270) a
   * StatefulSet pod made while its old claim was still terminating refers to
   * a claim that then disappears, and stays Pending for ever.
   */
  const loseNodes = async (hp: Release, nodes: string[]): Promise<string[]> => {
    const pods = await podsOn(hp.namespace, nodes)
    const claims = pods.map((p) => `data-${p}`)
    /** Each named object of `kind` now, by name: its uid (and a pod's address). */
    const listed = async (kind: string, names: string[]): Promise<Map<string, { uid: string; ip?: string }>> => {
      const list = JSON.parse(await cluster.kubectl('-n', hp.namespace, 'get', kind, '-o', 'json')) as {
        items: { metadata: { name: string; uid: string }; status?: { podIP?: string } }[]
      }
      return new Map(list.items.filter((x) => names.includes(x.metadata.name)).map((x) => [x.metadata.name, { uid: x.metadata.uid, ip: x.status?.podIP }]))
    }
    const oldClaims = await listed('pvc', claims)
    const oldPods = await listed('pods', pods)
    const lostIps = [...oldPods.values()].flatMap((p) => (p.ip ? [p.ip] : []))
    for (const node of nodes) await cluster.kubectl('cordon', node)
    await cluster.kubectl('-n', hp.namespace, 'delete', 'pvc', ...claims, '--wait=false')
    await cluster.kubectl('-n', hp.namespace, 'delete', 'pod', ...pods, '--grace-period=0', '--force', '--wait=false')
    await waitFor(
      'the lost claims to be gone and their pods made again',
      async () => {
        const [claimsNow, podsNow] = [await listed('pvc', claims), await listed('pods', pods)]
        const stale = claims.filter((c) => claimsNow.has(c) && claimsNow.get(c)?.uid === oldClaims.get(c)?.uid)
        const remade = pods.filter((p) => podsNow.has(p) && podsNow.get(p)?.uid !== oldPods.get(p)?.uid)
        if (stale.length > 0 || remade.length < pods.length) throw new Error(`old claims left: ${stale.join(', ')}; pods made again: ${remade.join(', ')}`)
        return true
      },
      { timeoutMs: 2 * 60_000, intervalMs: 500 },
    )
    await cluster.kubectl('-n', hp.namespace, 'delete', 'pod', ...pods, '--wait=false')
    // Reads go on through the Service once it stops sending clients to the lost pods (a connection a dying pod had
    // accepted is reset, as it would be through kube-proxy; clients retry, and a test does not).
    const service = new URL(hp.api).hostname
    await waitFor(
      'the Service to stop naming the lost pods',
      async () => {
        const named = (await cluster.resolve(service)).filter((ip) => lostIps.includes(ip))
        if (named.length > 0) throw new Error(`${service} still resolves to ${named.join(', ')}`)
        return true
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    )
    return pods
  }

  it('2+1 on 6 peers over 3 nodes: one fragment per node; a node lost with its disks loses no file, which are rebuilt and spread again', async () => {
    const hp = new Release(cluster, 'nodes')
    await hp.install('--set', 'rebuildDelayMs=5000,operator.enabled=true,operator.resyncMs=2000,operator.resources.requests.cpu=10m', '--set', 'replicaCount=6')
    await hp.settled(6, 0)
    const where = await domainsOf(hp)
    assert.deepEqual([...new Set([...where.values()].map((d) => d.zone))].sort(), ['zone-a', 'zone-b', 'zone-c'], 'peers read their zone from their node')
    const files: Stored[] = await hp.putFiles(30, 'node-loss')
    await hp.settled(6, files.length)
    assert.deepEqual(await worstSpread(hp, 'node-loss'), { node: 1, zone: 1 })
    const health = await hp.json<{ atRisk: { node: { files: number; domains: number } } }>(`${hp.api}/health/party`)
    assert.deepEqual([health.atRisk.node.files, health.atRisk.node.domains], [0, 3])

    const lost = await loseNodes(hp, ['node-b1'])
    assert.equal(lost.length, 2)
    await hp.verify(files)
    // The two lost peers are voted out and their fragments rebuilt on the nodes left (two nodes: some file then has two on one).
    await waitFor(
      'every file rebuilt on the peers left',
      async () => {
        const h = await hp.json<{ guests: number; healthy: number }>(`${hp.api}/health/party`)
        if (h.guests !== 4 || h.healthy !== files.length) throw new Error(`health ${JSON.stringify(h)}`)
        return true
      },
      { timeoutMs: 5 * 60_000, intervalMs: 1_000 },
    )
    await hp.verify(files)
    // The node comes back (empty disks): new peers there, and the census moves a fragment of each crowded file onto it.
    await cluster.kubectl('uncordon', 'node-b1')
    await hp.settled(6, files.length)
    await waitFor(
      'one fragment per node again',
      async () => {
        const placed = await placements(hp, 'node-loss')
        const spread = spreadOf(placed)
        if (spread.node !== 1) throw new Error(`worst spread ${JSON.stringify(spread)}; ${crowded(placed)}`)
        return true
      },
      { timeoutMs: 5 * 60_000, intervalMs: 2_000 },
    )
    await hp.verify(files)

    // The operator's PartyCrasher does the same to a node of its choosing: every pod of it deleted at once, 0 files lost.
    const file = join(cluster.dir, 'delete-node.json')
    await writeFile(
      file,
      JSON.stringify({
        apiVersion: 'houseparty.dev/v1alpha1',
        kind: 'PartyCrasher',
        metadata: { name: 'delete-node', namespace: hp.namespace },
        spec: { statefulSet: `${hp.name}-houseparty`, action: 'DeleteNode', rounds: 1, sampleFiles: 30, intervalSeconds: 0 },
      }),
    )
    await cluster.kubectl('-n', hp.namespace, 'apply', '-f', file)
    const pc = (await waitFor(
      'the DeleteNode round to finish',
      async () => {
        const x = JSON.parse(await cluster.kubectl('-n', hp.namespace, 'get', 'partycrasher', 'delete-node', '-o', 'json')) as PartyCrasher
        return x.status?.phase === 'Completed' || x.status?.phase === 'Failed' || x.status?.phase === 'Refused' ? x : undefined
      },
      { timeoutMs: 10 * 60_000, intervalMs: 2_000 },
    )) as PartyCrasher
    assert.equal(pc.status?.phase, 'Completed', pc.status?.message)
    const [round] = pc.status?.rounds ?? []
    assert.equal(round?.targets.length, 2, 'both pods of the node')
    assert.ok(round?.node?.startsWith('node-'), `the round names its node (${round?.node})`)
    assert.deepEqual([round?.outcome, round?.filesChecked, round?.filesUnreadable, round?.filesLost], ['Recovered', 30, 0, 0])
    console.log(`# PartyCrasher DeleteNode ${round?.node}: dead after ${round?.deathDeclaredSeconds} s, whole after ${round?.fullRedundancySeconds} s`)
    await hp.verify(files)
    await hp.uninstall()
  })

  it('4+2 on 6 peers over 4 nodes in 3 zones: at most 2 fragments per zone; a whole zone lost with its disks loses no file', async () => {
    const hp = new Release(cluster, 'zones')
    await hp.install('--set', 'rebuildDelayMs=5000,coding.dataFragments=4,coding.parityFragments=2,replicaCount=6')
    await hp.settled(6, 0)
    const files: Stored[] = await hp.putFiles(20, 'zone-loss')
    await hp.settled(6, files.length)
    const spread = await worstSpread(hp, 'zone-loss')
    assert.ok(spread.zone <= 2 && spread.node <= 2, `at most m = 2 fragments per zone and per node: ${JSON.stringify(spread)}`)
    const health = await hp.json<{ atRisk: { zone: { files: number; domains: number } } }>(`${hp.api}/health/party`)
    assert.deepEqual([health.atRisk.zone.files, health.atRisk.zone.domains], [0, 3])

    // Zone c (two nodes, two peers) is lost with its disks; 4 of each file's 6 fragments are left, and k = 4.
    const lost = await loseNodes(hp, ['node-c1', 'node-c2'])
    assert.equal(lost.length, 2)
    await hp.verify(files)
    await cluster.kubectl('uncordon', 'node-c1', 'node-c2')
    await hp.settled(6, files.length)
    await hp.verify(files)
    await hp.uninstall()
  })
})
