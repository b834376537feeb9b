import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { issueServerCert, newAuthority } from '../../../src/cli/certs.ts'
import { releaseDnsNames } from '../../../src/cli/commands/certgen.ts'
import { bytesOf, s3ClientEnv, sha256 } from '../../helpers/files.ts'
import { CHART } from '../../helpers/helm.ts'
import { waitFor } from '../../helpers/wait.ts'
import { clusterUnavailable, LocalCluster } from './cluster.ts'
import { Release, type Stored } from './release.ts'

/**
 * House Party on a real Kubernetes control plane on this machine (a real
 * kube-apiserver and kube-controller-manager, the real chart, the real peer
 * binary; pods are peer processes in their own network namespaces, run by
 * the test kubelet). What users do: `helm install`, delete pods, scale,
 * upgrade, cut a pod off, `helm test`. Every file must read back byte for
 * byte after each step. Skips with the reason where the machine cannot
 * (not root, or the control plane not built: .ci/run builds it).
 */
const skip = await clusterUnavailable()

describe('House Party on a local Kubernetes control plane', { skip, timeout: 60 * 60_000 }, () => {
  let cluster: LocalCluster
  let hp: Release
  let files: Stored[] = []

  before(async () => {
    cluster = await LocalCluster.start()
    hp = new Release(cluster, 'hp')
  })

  after(async () => {
    if (!cluster) return
    await cluster.stop()
    assert.deepEqual(await cluster.leftovers(), [], 'the cluster left nothing behind')
  })

  it('helm install: 5 pods ready, one party of 5 guests, each advertising its stable DNS name', async () => {
    // Long enough for a deleted pod to come back on a busy machine (a restart must cost no rebuild), short enough to see a lost one rebuilt.
    const notes = await hp.install('--set', 'rebuildDelayMs=30000')
    // One test node: the notes warn that losing it loses files.
    assert.match(notes, /WARNING: 5 peers on 1 node\(s\).*at least 3 nodes to survive the loss of one node \(5 peers per node here\)/)
    await hp.settled(5, 0)
    const guests = await hp.json<{ guests: { address: string }[] }>(`${hp.api}/guests`)
    assert.equal(guests.guests.length, 5)
    for (const g of guests.guests) assert.match(g.address, /^hp-houseparty-\d\.hp-houseparty-peers\.hp\.svc\.cluster\.local:7400$/)
  })

  it('HTTPS by default: a client without the CA is refused; a certificate rotated by replacing the Secret is served without a restart', async () => {
    const other = await newAuthority('not the release’s CA')
    const refused = await hp.fetch(`${hp.api}/guests`, { ca: other.cert })
    assert.equal(refused.status, 502, 'a client trusting another CA does not get through')
    assert.match(String(refused.headers['x-agent-error']), /self.signed|unable to verify|certificate/i)
    const plain = await cluster.fetch(`${hp.api.replace('https:', 'http:')}/guests`).catch((err: Error) => ({ status: 0, body: Buffer.from(err.message) }))
    assert.notEqual(plain.status, 200, 'no plain HTTP on the API port')

    // As cert-manager renews: the Secret's data replaced (here by a new CA as well), the pods left running.
    const restarts = new Map((await hp.pods()).map((p) => [p.name, p.restarts]))
    const ca = await newAuthority('rotated CA')
    const cert = await issueServerCert(ca, releaseDnsNames({ release: 'hp', namespace: 'hp', clusterDomain: 'cluster.local', extra: [] }))
    const b64 = (s: string): string => Buffer.from(s).toString('base64')
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'hp-houseparty-tls', namespace: 'hp' }, type: 'kubernetes.io/tls', data: {} }
    secret.data = { 'ca.crt': b64(ca.cert), 'tls.crt': b64(cert.cert), 'tls.key': b64(cert.key) }
    const dir = await mkdtemp(join(tmpdir(), 'houseparty-e2e-tls-'))
    try {
      await writeFile(join(dir, 'secret.json'), JSON.stringify(secret))
      await cluster.kubectl('apply', '-f', join(dir, 'secret.json'))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
    assert.equal(await hp.ca(true), ca.cert)
    await waitFor(
      'every peer to serve the rotated certificate',
      async () => {
        for (const p of await hp.pods()) if ((await hp.fetch(`${hp.podApi(p.name)}/guests`, { ca: ca.cert })).status !== 200) return false
        return true
      },
      { timeoutMs: 120_000, intervalMs: 1_000 },
    )
    assert.equal((await hp.fetch(`${hp.api}/guests`, { ca: other.cert })).status, 502)
    for (const p of await hp.pods()) assert.equal(p.restarts, restarts.get(p.name), `${p.name} was not restarted`)
  })

  it('a deleted pod comes back with its volume and identity: files healthy again without a rebuild or a byte moved', async () => {
    files = await hp.putFiles(50)
    await hp.settled(5, files.length)
    const id = await hp.guestId('hp-houseparty-2')
    const held = await hp.held('hp-houseparty-2')
    const rebuilt = await hp.metricSum('houseparty_fragments_rebuilt_total')
    await hp.deletePods(['hp-houseparty-2'])
    await hp.settled(5, files.length)
    assert.equal(await hp.guestId('hp-houseparty-2'), id, 'the same identity')
    assert.equal(await hp.metricSum('houseparty_fragments_rebuilt_total'), rebuilt, 'nothing rebuilt')
    // onStop=auto: the StatefulSet still counts the pod, so it stepped out for a restart (a handoff would have emptied it).
    assert.ok((await hp.held('hp-houseparty-2')) >= held / 2, `it came back holding its fragments (${held} before)`)
    await hp.verify(files)
  })

  it('a pod and its volume lost at once (force-deleted, as with a lost node): a new, empty peer; the old one’s fragments are rebuilt', async () => {
    const id = await hp.guestId('hp-houseparty-3')
    const rebuilt = await hp.metricSum('houseparty_fragments_rebuilt_total')
    await cluster.kubectl('-n', 'hp', 'delete', 'pvc', 'data-hp-houseparty-3', '--wait=false')
    await hp.deletePods(['hp-houseparty-3'], { force: true })
    // An empty data dir is a new guest; the old one's fragments wait out rebuildDelayMs (30 s here), then are rebuilt.
    assert.notEqual(await hp.guestId('hp-houseparty-3'), id, 'a new identity on a new volume')
    await hp.settled(5, files.length)
    assert.ok((await hp.metricSum('houseparty_fragments_rebuilt_total')) > rebuilt, 'fragments were rebuilt')
    await hp.verify(files)
  })

  it('scale 5 → 7 (new guests get data) and 7 → 4 (each leaving peer hands its data off; no file ever below k)', async () => {
    await hp.scale(7)
    await hp.settled(7, files.length)
    await waitFor(
      'rebalancing to move fragments onto the new guests',
      async () => {
        for (const p of ['hp-houseparty-5', 'hp-houseparty-6']) if (!((await hp.held(p)) > 0)) return false
        return true
      },
      { timeoutMs: 5 * 60_000, intervalMs: 2_000 },
    )
    let watching = true
    let worstLost = 0
    let samples = 0
    const watcher = (async () => {
      while (watching) {
        // A peer may be leaving under the request: that sample is skipped, and the test checks that enough were taken.
        const health = await hp.json<{ lost: number }>(`${hp.api}/health/party`).catch(() => undefined)
        if (health) {
          samples++
          worstLost = Math.max(worstLost, health.lost)
        }
        await new Promise((r) => setTimeout(r, 250))
      }
    })()
    await hp.scale(4)
    await hp.settled(4, files.length)
    watching = false
    await watcher
    assert.ok(samples >= 3, `the party's health was read while peers left (${samples} answers)`)
    assert.equal(worstLost, 0, 'no file dropped below k fragments while peers left')
    await hp.verify(files)
  })

  it('helm upgrade with a changed value rolls the peers one by one, moving no data; a reader sees no failure', async () => {
    await hp.scale(5)
    await hp.settled(5, files.length)
    const pods = (await hp.pods()).map((p) => p.name)
    const heldBefore = new Map(await Promise.all(pods.map(async (p) => [p, await hp.held(p)] as const)))
    const rolledAt = performance.now()
    let reads = 0
    const failures: string[] = []
    let reading = true
    const reader = (async () => {
      for (let i = 0; reading; i++) {
        const f = files[i % files.length] as Stored
        const res = await hp.fetch(`${hp.api}/files/${f.name}`).catch((err: Error) => ({ status: 0, body: Buffer.from(err.message) }))
        reads++
        if (res.status !== 200 || sha256(res.body) !== f.hash) failures.push(`${f.name}: ${res.status} ${res.body.toString().slice(0, 600)}`)
      }
    })()
    await hp.upgrade('--set', 'rebuildDelayMs=30000,logLevel=debug')
    await hp.settled(5, files.length)
    reading = false
    await reader
    console.log(`# rolling restart: ${((performance.now() - rolledAt) / 1000).toFixed(1)} s, ${reads} reads during it, ${failures.length} failed`)
    assert.deepEqual(failures, [])
    for (const [p, before] of heldBefore) {
      // Each pod stepped out for a restart and came back on its volume; a handoff would have emptied the last one at least.
      assert.ok((await hp.held(p)) >= before / 2, `${p} still holds its fragments after the roll (${before} before)`)
    }
    await hp.verify(files)
  })

  it('a pod cut off for 10 s: the rest carry on, it rejoins with its identity, nothing is lost', async () => {
    const id = await hp.guestId('hp-houseparty-1')
    const cutAt = performance.now()
    await cluster.network.partition('hp/hp-houseparty-1', true)
    try {
      await waitFor(
        'the others to remove the cut-off pod',
        async () => {
          const g = await hp.json<{ guests: { id: string }[] }>(`${hp.podApi('hp-houseparty-0')}/guests`)
          return g.guests.length === 4 && !g.guests.some((x) => x.id === id)
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      )
      // The rest carry on: files read and a new one is written while it is away. Through a pod that
      // is not cut off: the client Service keeps the cut-off pod until its readiness probe fails
      // (as in any cluster), and a client that picks it waits out its own timeout.
      const survivor = hp.podApi('hp-houseparty-0')
      await hp.verify(files.slice(0, 10), survivor)
      files.push(...(await hp.putFiles(1, 'while-cut-off', survivor)))
      await waitFor('10 s of partition', () => performance.now() - cutAt >= 10_000, { timeoutMs: 20_000, intervalMs: 200 })
    } finally {
      await cluster.network.partition('hp/hp-houseparty-1', false)
    }
    await hp.settled(5, files.length)
    assert.equal(await hp.guestId('hp-houseparty-1'), id, 'it came back under its identity')
    await hp.verify(files)
  })

  it("S3 through the chart's Service: a pod deleted during an aws s3 sync, then rclone check finds 0 differences", async () => {
    const secret = JSON.parse(await cluster.kubectl('-n', 'hp', 'get', 'secret', 'hp-houseparty', '-o', 'json')) as { data: Record<string, string> }
    const decode = (key: string): string => Buffer.from(secret.data[key] ?? '', 'base64').toString()
    const accessKeyId = decode('s3-access-key-id')
    const secretAccessKey = decode('s3-secret-access-key')
    const endpoint = hp.s3Endpoint
    const home = await mkdtemp(join(tmpdir(), 'houseparty-e2e-s3-'))
    try {
      await writeFile(join(home, 'ca.crt'), (await hp.ca()) as string)
      const tree = join(home, 'tree')
      for (let i = 0; i < 60; i++) {
        await mkdir(join(tree, `d${i % 4}`), { recursive: true })
        await writeFile(join(tree, `d${i % 4}`, `f${i}.bin`), bytesOf(i % 5 === 0 ? 6 * 1024 * 1024 + i : 20_000 + i * 977, i))
      }
      // Retries as a user would configure them for a cluster whose pods come and go.
      const env = { ...s3ClientEnv(home, { accessKeyId, secretAccessKey }, endpoint, join(home, 'ca.crt')), AWS_MAX_ATTEMPTS: '10', AWS_RETRY_MODE: 'standard' }
      // The sync runs as over a slow link (about 60 MB at 3 MB/s: some 20 s), so the pod surely goes while it runs,
      // however fast or loaded the machine.
      await writeFile(join(home, 'aws-config'), '[default]\ns3 =\n  max_bandwidth = 3MB/s\n  max_concurrent_requests = 4\n')
      const aws = (...args: string[]) => cluster.runInCluster('/usr/bin/aws', ['--endpoint-url', endpoint, '--ca-bundle', join(home, 'ca.crt'), ...args], env)
      await aws('s3', 'mb', 's3://synced')
      let synced = false
      const syncing = aws('s3', 'sync', '--no-progress', tree, 's3://synced/tree').finally(() => {
        synced = true
      })
      syncing.catch(() => undefined)
      // Once the sync is under way, a pod goes (and comes back, with its volume, as a deleted pod does).
      await waitFor(
        'the sync to be under way',
        async () => (await aws('s3', 'ls', '--recursive', 's3://synced/')).stdout.trim().split('\n').filter(Boolean).length >= 3,
        { timeoutMs: 120_000, intervalMs: 200 },
      )
      let syncedBeforeDelete: boolean | undefined
      await hp.deletePods(['hp-houseparty-3'], {
        deleted: () => {
          syncedBeforeDelete = synced
        },
      })
      assert.equal(syncedBeforeDelete, false, 'the pod was deleted while the sync ran')
      await syncing
      const checked = await cluster.runInCluster('/usr/bin/rclone', ['check', tree, 'hp:synced/tree'], env)
      assert.match(checked.stderr, /: 0 differences found/)
      await hp.settled(5, files.length + 61)
    } finally {
      await rm(home, { recursive: true, force: true })
    }
  })

  it('helm test passes', async () => {
    const out = await cluster.helm('test', 'hp', '--namespace', 'hp', '--timeout', '5m')
    assert.match(out, /Phase:\s+Succeeded/)
    await hp.uninstall()
  })

  it('4+2 on 8 peers, encrypted at rest: two pods deleted at once lose nothing', async () => {
    const hq = new Release(cluster, 'hq')
    await hq.install('--values', `${CHART}/ci/4plus2-values.yaml`, '--values', `${CHART}/ci/at-rest-values.yaml`)
    await hq.settled(8, 0)
    const stored = await hq.putFiles(24)
    await hq.settled(8, stored.length)
    await hq.deletePods(['hq-houseparty-2', 'hq-houseparty-5'])
    await hq.settled(8, stored.length)
    await hq.verify(stored)
    await hq.uninstall()
  })
})
