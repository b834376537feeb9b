import assert from 'node:assert/strict'
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { Agent } from 'undici'
import { bytesOf, sha256 } from '../../helpers/files.ts'
import { CHART, k8sTool } from '../../helpers/helm.ts'
import { waitFor } from '../../helpers/wait.ts'
import { kindUnavailable } from './requirements.ts'

/**
 * House Party on a real Kubernetes cluster in Docker (kind), as users run it:
 * build the image, `helm install` the chart, put files, delete peer pods one
 * at a time and two at once, scale 5 → 7 → 5, `helm upgrade` (a rolling
 * restart) and `helm test`. After every step each file reads back byte for
 * byte and houseparty_files_degraded is 0 on every peer.
 *
 * Needs a Docker engine and kind; skips with a message elsewhere. The
 * e2e-kind workflow runs it on every push. HOUSEPARTY_KIND_CLUSTER reuses a
 * cluster (and keeps it); otherwise one is made and deleted.
 */
const run = promisify(execFile)
const ROOT = resolve(import.meta.dirname, '../../..')
const IMAGE = 'houseparty:e2e'

const skip = kindUnavailable()

const MiB = 1024 * 1024
/** Values every install here uses: the image built above, small requests so a CI runner fits two parties. */
const BASE = [
  '--set',
  `image.repository=houseparty,image.tag=e2e,image.pullPolicy=Never,resources.requests.cpu=50m,resources.requests.memory=96Mi,persistence.size=1Gi`,
]

interface Stored {
  name: string
  hash: string
}

describe('House Party on kind', { skip, timeout: 60 * 60_000 }, () => {
  const cluster = process.env.HOUSEPARTY_KIND_CLUSTER ?? 'houseparty-e2e'
  const keep = process.env.HOUSEPARTY_KIND_CLUSTER !== undefined
  let dir = ''
  let env: NodeJS.ProcessEnv = {}

  const kubectl = async (...args: string[]): Promise<string> => (await run(await k8sTool('kubectl'), args, { env, maxBuffer: 64 * MiB })).stdout
  const helm = async (...args: string[]): Promise<string> => (await run(await k8sTool('helm'), args, { env, maxBuffer: 64 * MiB, timeout: 15 * 60_000 })).stdout
  /** `helm install` with the values every install here uses, waiting for the pods. */
  const install = (release: string, ns: string, ...values: string[]): Promise<string> =>
    helm('install', release, CHART, '--namespace', ns, '--create-namespace', ...BASE, ...values, '--wait', '--timeout', '10m')
  const uninstall = async (release: string, ns: string): Promise<void> => {
    await helm('uninstall', release, '--namespace', ns, '--wait')
    await kubectl('delete', 'namespace', ns, '--wait=false')
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'houseparty-kind-'))
    const kubeconfig = join(dir, 'kubeconfig')
    env = { ...process.env, KUBECONFIG: kubeconfig, HELM_CACHE_HOME: join(dir, 'helm'), HELM_CONFIG_HOME: join(dir, 'helm'), HELM_DATA_HOME: join(dir, 'helm') }
    const clusters = (await run('kind', ['get', 'clusters'])).stdout.split('\n')
    if (!clusters.includes(cluster)) await run('kind', ['create', 'cluster', '--name', cluster, '--wait', '300s'], { timeout: 10 * 60_000 })
    await writeFile(kubeconfig, (await run('kind', ['get', 'kubeconfig', '--name', cluster])).stdout)
    await run('docker', ['build', '-t', IMAGE, ROOT], { timeout: 20 * 60_000, maxBuffer: 64 * MiB })
    await run('kind', ['load', 'docker-image', IMAGE, '--name', cluster], { timeout: 10 * 60_000 })
  })

  after(async () => {
    if (!keep) await run('kind', ['delete', 'cluster', '--name', cluster]).catch(() => undefined)
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  /** Runs `fn` against a pod's API through a fresh `kubectl port-forward` (a forward dies with its pod). */
  async function through<T>(ns: string, pod: string, fn: (api: string) => Promise<T>): Promise<T> {
    const port = await new Promise<number>((r) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port
        s.close(() => r(p))
      })
    })
    const forward: ChildProcess = spawn(await k8sTool('kubectl'), ['-n', ns, 'port-forward', `pod/${pod}`, `${port}:7480`], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    try {
      await new Promise<void>((ok, fail) => {
        forward.stdout?.on('data', (d: Buffer) => d.toString().includes('Forwarding from') && ok())
        forward.once('exit', (code) => fail(new Error(`port-forward to ${pod} exited ${code}`)))
      })
      // localhost: a name the release's certificate covers (a port-forward listens on loopback).
      return await fn(`localhost:${port}`)
    } finally {
      forward.kill()
    }
  }

  async function readyPods(ns: string, release: string): Promise<string[]> {
    const pods = JSON.parse(
      await kubectl('-n', ns, 'get', 'pods', '-l', `app.kubernetes.io/instance=${release},app.kubernetes.io/name=houseparty`, '-o', 'json'),
    ) as {
      items: { metadata: { name: string; deletionTimestamp?: string }; status: { conditions?: { type: string; status: string }[] } }[]
    }
    return pods.items
      .filter((p) => !p.metadata.deletionTimestamp && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
      .map((p) => p.metadata.name)
      .filter((n) => !n.includes('-test-'))
      .sort()
  }

  /** Every peer ready and on one list of `n` guests, every file healthy and degraded 0 on every peer. */
  async function settled(ns: string, release: string, n: number, files: number): Promise<void> {
    // One client for the wait (the release's CA read once, one connection pool), not one per poll.
    const c = await client(ns, release)
    await waitFor(
      `${n} peers ready, ${files} files healthy, houseparty_files_degraded 0 everywhere`,
      async () => {
        const pods = await readyPods(ns, release)
        if (pods.length !== n) return false
        const pod = pods[0] as string
        return through(ns, pod, async (api) => {
          const guests = (await (await fetch(`${c.scheme}://${api}/guests`, c.init)).json()) as { guests: unknown[] }
          const health = (await (await fetch(`${c.scheme}://${api}/health/party`, c.init)).json()) as { files: number; healthy: number; answered: number }
          if (guests.guests.length !== n || health.files !== files || health.healthy !== files || health.answered !== n) return false
          for (const p of pods) {
            const metrics = await kubectl('get', '--raw', `/api/v1/namespaces/${ns}/pods/${c.scheme}:${p}:7480/proxy/metrics`)
            const degraded = Number(/^houseparty_files_degraded (\S+)$/m.exec(metrics)?.[1] ?? 'NaN')
            if (degraded !== 0) return false
          }
          return true
        })
      },
      { timeoutMs: 10 * 60_000, intervalMs: 2_000 },
    )
  }

  /** The Authorization header for a release's file API: the token the chart made into its Secret (none if it made none). */
  async function auth(ns: string, release: string): Promise<Record<string, string>> {
    const data = await kubectl('-n', ns, 'get', 'secret', `${release}-houseparty`, '-o', 'jsonpath={.data.api-token}').catch(() => '')
    return data.trim() ? { authorization: `Bearer ${Buffer.from(data.trim(), 'base64').toString('utf8')}` } : {}
  }

  /**
   * How to reach a release's API: over HTTPS (the chart's default) with the CA in its TLS Secret, else plain HTTP
   * (`dispatcher` is undici's, which Node's fetch takes).
   */
  async function client(ns: string, release: string): Promise<{ scheme: string; init: RequestInit }> {
    const ca = await kubectl('-n', ns, 'get', 'secret', `${release}-houseparty-tls`, '-o', 'jsonpath={.data.ca\\.crt}').catch(() => '')
    if (!ca.trim()) return { scheme: 'http', init: {} }
    const dispatcher = new Agent({ connect: { ca: Buffer.from(ca.trim(), 'base64').toString('utf8') } })
    return { scheme: 'https', init: { dispatcher } as RequestInit }
  }

  async function putFiles(ns: string, pod: string, count: number): Promise<Stored[]> {
    const release = pod.replace(/-houseparty-\d+$/, '')
    const headers = await auth(ns, release)
    const c = await client(ns, release)
    return through(ns, pod, async (api) => {
      const out: Stored[] = []
      for (let i = 0; i < count; i++) {
        const data = bytesOf(1 + ((i * 977_123) % (2 * MiB)), 500 + i)
        const res = await fetch(`${c.scheme}://${api}/files/e2e/${i}`, { ...c.init, method: 'PUT', body: data, headers })
        assert.equal(res.status, 201, `put e2e/${i}: ${await res.text()}`)
        out.push({ name: `e2e/${i}`, hash: sha256(data) })
      }
      return out
    })
  }

  async function verify(ns: string, release: string, files: readonly Stored[]): Promise<void> {
    const [pod] = await readyPods(ns, release)
    const headers = await auth(ns, release)
    const c = await client(ns, release)
    await through(ns, pod as string, async (api) => {
      for (const f of files) {
        const res = await fetch(`${c.scheme}://${api}/files/${f.name}`, { ...c.init, headers })
        assert.equal(res.status, 200, `get ${f.name}`)
        assert.equal(sha256(Buffer.from(await res.arrayBuffer())), f.hash, `${f.name} came back different`)
      }
    })
  }

  async function uidOf(ns: string, pod: string): Promise<string> {
    return (await kubectl('-n', ns, 'get', 'pod', pod, '-o', 'jsonpath={.metadata.uid}').catch(() => '')).trim()
  }

  /** Deletes pods (the StatefulSet makes them again, on their volumes) and waits until each is back as a new, ready pod. */
  async function deletePods(ns: string, release: string, pods: string[]): Promise<void> {
    const before = new Map(await Promise.all(pods.map(async (p) => [p, await uidOf(ns, p)] as const)))
    await kubectl('-n', ns, 'delete', 'pod', ...pods, '--wait=false')
    await waitFor(
      `${pods.join(', ')} to come back`,
      async () => {
        const ready = await readyPods(ns, release)
        for (const p of pods) {
          const uid = await uidOf(ns, p)
          if (!ready.includes(p) || uid === '' || uid === before.get(p)) return false
        }
        return true
      },
      { timeoutMs: 5 * 60_000, intervalMs: 1_000 },
    )
  }

  it('2+1 on 5 peers: delete pods one at a time, scale 5 → 7 → 5, upgrade with a rolling restart, helm test', async () => {
    const ns = 'hp-a'
    const release = 'hpa'
    const sts = `${release}-houseparty`
    await install(release, ns)
    await settled(ns, release, 5, 0)
    const files = await putFiles(ns, `${sts}-0`, 40)
    await settled(ns, release, 5, files.length)
    await verify(ns, release, files)

    for (const i of [2, 4]) {
      await deletePods(ns, release, [`${sts}-${i}`])
      await settled(ns, release, 5, files.length)
      await verify(ns, release, files)
    }

    await kubectl('-n', ns, 'scale', `statefulset/${sts}`, '--replicas', '7')
    await settled(ns, release, 7, files.length)
    await verify(ns, release, files)
    await kubectl('-n', ns, 'scale', `statefulset/${sts}`, '--replicas', '5')
    await settled(ns, release, 5, files.length)
    await verify(ns, release, files)

    await helm('upgrade', release, CHART, '--namespace', ns, ...BASE, '--set', 'logLevel=debug', '--wait', '--timeout', '15m')
    await settled(ns, release, 5, files.length)
    await verify(ns, release, files)

    const test = await helm('test', release, '--namespace', ns, '--timeout', '5m', '--logs')
    assert.match(test, /Phase:\s+Succeeded/)
    assert.match(test, /round trip of 3000000 bytes: ok/)
    await uninstall(release, ns)
  })

  it('4+2 on 8 peers: two pods deleted at once lose nothing', async () => {
    const ns = 'hp-b'
    const release = 'hpb'
    const sts = `${release}-houseparty`
    await install(release, ns, '--values', join(CHART, 'ci/4plus2-values.yaml'))
    await settled(ns, release, 8, 0)
    const files = await putFiles(ns, `${sts}-0`, 24)
    await settled(ns, release, 8, files.length)
    await deletePods(ns, release, [`${sts}-2`, `${sts}-5`])
    await settled(ns, release, 8, files.length)
    await verify(ns, release, files)
    await uninstall(release, ns)
  })

  it('the operator: a PartyCrasher deleting a pod for 3 rounds loses nothing, a kill and a freeze by exec, m+1 at once is refused, a HouseParty scales 6 → 4', async () => {
    const ns = 'hp-c'
    const release = 'hpc'
    const sts = `${release}-houseparty`
    await install(release, ns, '--set', 'operator.enabled=true,operator.replicas=2')
    await settled(ns, release, 5, 0)
    const files = await putFiles(ns, `${sts}-0`, 20)
    await settled(ns, release, 5, files.length)
    const apply = async (doc: object): Promise<void> => {
      const file = join(dir, `${ns}-${Date.now()}.json`)
      await writeFile(file, JSON.stringify(doc))
      await kubectl('-n', ns, 'apply', '-f', file)
    }
    const status = async <T>(kind: string, name: string): Promise<T> =>
      (JSON.parse(await kubectl('-n', ns, 'get', kind, name, '-o', 'json')) as { status?: T }).status ?? ({} as T)
    type CrasherStatus = { phase?: string; message?: string; summary?: { rounds: number; filesLost: number; filesUnreadable: number } }
    const crasher = (name: string, spec: object) =>
      apply({ apiVersion: 'houseparty.dev/v1alpha1', kind: 'PartyCrasher', metadata: { name }, spec: { statefulSet: sts, ...spec } })

    await crasher('three-deletes', { action: 'DeletePod', rounds: 3, intervalSeconds: 0, sampleFiles: 10 })
    const done = (await waitFor(
      'the PartyCrasher to finish',
      async () => {
        const s = await status<CrasherStatus>('partycrasher', 'three-deletes')
        return s.phase === 'Completed' || s.phase === 'Failed' ? s : undefined
      },
      { timeoutMs: 20 * 60_000, intervalMs: 2_000 },
    )) as CrasherStatus
    assert.equal(done.phase, 'Completed', done.message)
    assert.deepEqual([done.summary?.rounds, done.summary?.filesLost, done.summary?.filesUnreadable], [3, 0, 0])

    // Through exec in the real image, where tini is PID 1 and `houseparty signal` finds the peer by its lock file.
    for (const action of ['KillProcess', 'Freeze']) {
      const name = action.toLowerCase()
      await crasher(name, { action, durationSeconds: 5, rounds: 1, sampleFiles: 10 })
      const s = (await waitFor(
        `the ${action} PartyCrasher to finish`,
        async () => {
          const x = await status<CrasherStatus>('partycrasher', name)
          return x.phase === 'Completed' || x.phase === 'Failed' ? x : undefined
        },
        { timeoutMs: 10 * 60_000, intervalMs: 2_000 },
      )) as CrasherStatus
      assert.equal(s.phase, 'Completed', s.message)
      assert.deepEqual([s.summary?.rounds, s.summary?.filesLost, s.summary?.filesUnreadable], [1, 0, 0])
    }

    await crasher('too-many', { action: 'DeletePod', count: 2, rounds: 1 })
    await waitFor('the refusal', async () => (await status<CrasherStatus>('partycrasher', 'too-many')).phase === 'Refused', {
      timeoutMs: 2 * 60_000,
      intervalMs: 1_000,
    })

    await settled(ns, release, 5, files.length)
    await kubectl('-n', ns, 'scale', `statefulset/${sts}`, '--replicas', '6')
    await settled(ns, release, 6, files.length)
    await apply({
      apiVersion: 'houseparty.dev/v1alpha1',
      kind: 'HouseParty',
      metadata: { name: 'hp' },
      spec: { statefulSet: sts, minGuests: 4, maxGuests: 4, reclaim: 'Delete' },
    })
    await waitFor(
      'the HouseParty to settle at 4 guests',
      async () => {
        const s = await status<{ guests?: number; replicas?: number; degraded?: number }>('houseparty', 'hp')
        return s.guests === 4 && s.replicas === 4 && s.degraded === 0
      },
      { timeoutMs: 15 * 60_000, intervalMs: 2_000 },
    )
    await settled(ns, release, 4, files.length)
    await verify(ns, release, files)
    await uninstall(release, ns)
  })
})
