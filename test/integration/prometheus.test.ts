import assert from 'node:assert/strict'
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { stringify } from 'yaml'
import type { LocalParty } from '../../src/cli/local-party.ts'
import { seal } from '../../src/peer/net/index.ts'
import { bytesOf, getBytes, putBytes } from '../helpers/files.ts'
import { CHART, renderChart } from '../helpers/helm.ts'
import { partiesForThisFile, waitForAgreement } from '../helpers/party.ts'
import { waitFor } from '../helpers/wait.ts'

/**
 * The dashboard and the alerts against a real Prometheus (Debian's
 * `prometheus`, started here on loopback) scraping a real local party while
 * files are put and got, peers are killed, a peer cannot get in and a
 * stranger sends datagrams under another key. Every dashboard query and
 * every alert expression must return data; `promtool` checks each peer's
 * /metrics and unit-tests the alert rules.
 */
const run = promisify(execFile)
const newParty = partiesForThisFile()
const missing = ['prometheus', 'promtool'].filter((bin) => spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0)
const skip = missing.length > 0 ? `${missing.join(' and ')} not installed (Debian: apt-get install prometheus; .ci/run installs it)` : false

const RELEASE = 'hp'
const NAMESPACE = 'default'
const JOB = `${RELEASE}-houseparty-peers`

interface Rule {
  alert: string
  expr: string
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

async function alertRules(): Promise<{ groups: { name: string; rules: Rule[] }[] }> {
  const [rule] = await renderChart({
    release: RELEASE,
    namespace: NAMESPACE,
    set: { 'metrics.prometheusRule.enabled': 'true', 'metrics.prometheusRule.degradedFor': '1m' },
    args: ['--show-only', 'templates/prometheusrule.yaml'],
  })
  return (rule as unknown as { spec: { groups: { name: string; rules: Rule[] }[] } }).spec
}

describe('Grafana dashboard and alerts on a real Prometheus', { skip }, () => {
  let dir = ''
  let party: LocalParty
  let prometheus: ChildProcess | undefined
  let api = ''
  const peers = [0, 1, 2, 3, 4, 5]
  let rules: Rule[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'houseparty-prometheus-'))
    ;({ party } = await newParty(7, ['--census-interval-ms', '1000', '--scrub-interval-ms', '2000', '--rebuild-delay-ms', '3000', '--orphan-grace-ms', '2000']))
    // Peers 1 and 2 share a node. Once 3, 4 and 5 are dead below, the survivors' two nodes cannot keep a file's three
    // fragments apart: the files stay at risk by node (HousePartyFilesAtRisk) however soon recovery has rebuilt them.
    const six = [0, 1, 2, 3, 4, 5]
    await Promise.all(six.map((i) => party.start(i, undefined, i === 1 || i === 2 ? ['--node', 'shared'] : [])))
    await waitForAgreement(party, six, 6)
    const spec = await alertRules()
    rules = spec.groups.flatMap((g) => g.rules)
    await writeFile(join(dir, 'rules.yml'), stringify(spec))
    const port = await freePort()
    api = `http://127.0.0.1:${port}`
    await writeFile(
      join(dir, 'prometheus.yml'),
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [join(dir, 'rules.yml')],
        scrape_configs: [
          {
            // The labels a ServiceMonitor gives a peer's series: job (the headless Service), namespace, pod.
            job_name: JOB,
            static_configs: [{ targets: [0, 1, 2, 3, 4, 5, 6].map((i) => party.peer(i).api), labels: { namespace: NAMESPACE } }],
            relabel_configs: [{ source_labels: ['__address__'], target_label: 'pod' }],
          },
        ],
      }),
    )
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    let log = ''
    prometheus.stderr?.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-4000)
    })
    await waitFor(
      'Prometheus to be ready',
      async () => (await fetch(`${api}/-/ready`)).ok || (prometheus?.exitCode !== null ? Promise.reject(new Error(log)) : false),
      {
        timeoutMs: 30_000,
        intervalMs: 200,
      },
    )

    // Traffic, then faults: a death that is rebuilt, two deaths at once (files lost), a peer that never gets in, a stranger's datagrams.
    for (let i = 0; i < 30; i++) assert.equal((await putBytes(party.peer(i % 6).api, `prom/${i}`, bytesOf(50_000 + i * 1000, i))).status, 201)
    for (let i = 0; i < 30; i += 3) assert.equal((await getBytes(party.peer((i + 1) % 6).api, `prom/${i}`)).status, 200)
    // S3 traffic too, one request refused (the dashboard shows S3 errors by code).
    const s3 = new S3Client({
      endpoint: `http://127.0.0.1:${party.peer(1).s3Port}`,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: party.s3Key.accessKeyId, secretAccessKey: party.s3Key.secretAccessKey },
    })
    await s3.send(new CreateBucketCommand({ Bucket: 'prom' }))
    await s3.send(new PutObjectCommand({ Bucket: 'prom', Key: 'a', Body: 'a' }))
    await s3.send(new GetObjectCommand({ Bucket: 'prom', Key: 'a' }))
    await assert.rejects(s3.send(new GetObjectCommand({ Bucket: 'prom', Key: 'none' })))
    party.signal(5, 'SIGKILL')
    await waitForAgreement(party, [0, 1, 2, 3, 4], 5, 30_000)
    party.signal(3, 'SIGKILL')
    party.signal(4, 'SIGKILL')
    await waitForAgreement(party, [0, 1, 2], 3, 30_000)
    await party.start(6, [], ['--join', '127.0.0.1:1']) // knocks on a door nobody opens
    const stranger = createSocket('udp4')
    const key = Buffer.from('not the party key, but long enough')
    const noise = setInterval(() => stranger.send(seal(key, Buffer.from('{"type":"ping"}'), Date.now()), party.peer(0).port, '127.0.0.1'), 30)
    await waitFor(
      'datagrams under another key to be counted',
      async () => (await query('houseparty_udp_datagrams_dropped_total{reason="mac"} > 50')).length > 0,
      {
        timeoutMs: 30_000,
      },
    )
    clearInterval(noise)
    stranger.close()
  })

  after(async () => {
    prometheus?.kill('SIGKILL')
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  async function query(expr: string): Promise<unknown[]> {
    const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(expr)}`)
    const body = (await res.json()) as { status: string; error?: string; data?: { result: unknown[] } }
    if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`)
    return body.data?.result ?? []
  }

  it('every dashboard query returns data', async () => {
    const dashboard = JSON.parse(await readFile(join(CHART, 'dashboards/houseparty.json'), 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[]
    }
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets) {
        const concrete = expr.replaceAll('$namespace', NAMESPACE).replaceAll('$job', JOB).replaceAll('$__rate_interval', '1m')
        await waitFor(`"${panel.title}": ${concrete} to return data`, async () => (await query(concrete)).length > 0, { timeoutMs: 60_000, intervalMs: 500 })
      }
    }
  })

  it('every alert expression returns data, the rules are healthy, and the alerts for what happened are raised', async () => {
    assert.deepEqual(
      rules.map((r) => r.alert),
      [
        'HousePartyFilesLost',
        'HousePartyDegraded',
        'HousePartyFilesAtRisk',
        'HousePartyGuestsDropped',
        'HousePartyWrongKeyDatagrams',
        'HousePartyPeerNotAdmitted',
      ],
    )
    for (const r of rules)
      await waitFor(`${r.alert}: ${r.expr} to return data`, async () => (await query(r.expr)).length > 0, { timeoutMs: 60_000, intervalMs: 500 })
    const raised = await waitFor(
      'every alert to be pending or firing',
      async () => {
        const body = (await (await fetch(`${api}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string; health: string; state: string }[] }[] } }
        const all = body.data.groups.flatMap((g) => g.rules)
        assert.ok(
          all.every((r) => r.health === 'ok'),
          JSON.stringify(all),
        )
        const quiet = all.filter((r) => r.state !== 'pending' && r.state !== 'firing').map((r) => r.name)
        // Thrown, not returned: a timeout then names the alerts still inactive.
        if (quiet.length > 0) throw new Error(`still inactive: ${quiet.join(', ')}`)
        return all
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    )
    assert.equal(raised.length, rules.length)
  })

  it('promtool finds nothing wrong with any peer’s /metrics', async () => {
    for (const i of peers.filter((p) => party.isRunning(p))) {
      const text = await (await fetch(`http://${party.peer(i).api}/metrics`)).text()
      const checked = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
      assert.equal(checked.status, 0, `peer ${i}: ${checked.stdout}${checked.stderr}`)
      assert.equal(`${checked.stdout}${checked.stderr}`.trim(), '', `peer ${i}`)
    }
  })

  it('promtool checks the rules and unit-tests every alert', async () => {
    const rulesFile = join(dir, 'rules.yml')
    assert.match((await run('promtool', ['check', 'rules', rulesFile])).stdout, /SUCCESS: 6 rules found/)
    const series = (name: string, extra: string, values: string): { series: string; values: string } => ({
      series: `${name}{job="${JOB}",namespace="${NAMESPACE}"${extra}}`,
      values,
    })
    const tests = {
      rule_files: [rulesFile],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [
            series('houseparty_files_lost', ',pod="a"', '0 0 2 2 2 2'),
            series('houseparty_files_degraded', ',pod="a"', '0 3 3 3 3 3'),
            series('houseparty_guests', ',pod="a"', '5 5 4 4 4 4 4 4 4 4'),
            series('houseparty_files_at_risk', ',pod="a",domain="node"', '0 0 3x20'),
            series('houseparty_files_at_risk', ',pod="a",domain="zone"', '0x22'),
            series('houseparty_files_at_risk', ',pod="a",domain="region"', '7x22'),
            series('houseparty_udp_datagrams_dropped_total', ',pod="a",reason="mac"', '0+60x20'),
            series('houseparty_admitted', ',pod="a"', '1x20'),
            series('houseparty_admitted', ',pod="b"', '0x20'),
          ],
          alert_rule_test: [
            { eval_time: '1m', alertname: 'HousePartyFilesLost', exp_alerts: [] },
            {
              eval_time: '4m',
              alertname: 'HousePartyFilesLost',
              exp_alerts: [
                {
                  exp_labels: { severity: 'critical' },
                  exp_annotations: {
                    summary: 'House Party has files with fewer than k usable fragments',
                    description:
                      '2 files cannot be read until a peer holding their fragments comes back. Check which peers are down (GET /guests, GET /health/party).',
                  },
                },
              ],
            },
            { eval_time: '1m', alertname: 'HousePartyDegraded', exp_alerts: [] },
            {
              eval_time: '3m',
              alertname: 'HousePartyDegraded',
              exp_alerts: [{ exp_labels: { severity: 'warning' }, exp_annotations: expect('HousePartyDegraded') }],
            },
            { eval_time: '10m', alertname: 'HousePartyFilesAtRisk', exp_alerts: [] },
            {
              eval_time: '17m',
              alertname: 'HousePartyFilesAtRisk',
              exp_alerts: [
                {
                  exp_labels: { severity: 'warning', domain: 'node' },
                  exp_annotations: {
                    summary: 'Losing one House Party node would make files unreadable',
                    description:
                      'At least 3 readable files would become unreadable if the worst single node were lost now: their fragments share it more than the coding survives (too few nodes or zones for the coding, peers crowded on one node), or they are down to k fragments. `houseparty health` names the domain; add nodes or zones, or spread the peers (topology.whenUnsatisfiable).',
                  },
                },
              ],
            },
            { eval_time: '3m', alertname: 'HousePartyGuestsDropped', exp_alerts: [] },
            {
              eval_time: '8m',
              alertname: 'HousePartyGuestsDropped',
              exp_alerts: [{ exp_labels: { severity: 'warning' }, exp_annotations: expect('HousePartyGuestsDropped') }],
            },
            { eval_time: '5m', alertname: 'HousePartyWrongKeyDatagrams', exp_alerts: [] },
            {
              eval_time: '16m',
              alertname: 'HousePartyWrongKeyDatagrams',
              exp_alerts: [{ exp_labels: { severity: 'warning' }, exp_annotations: expect('HousePartyWrongKeyDatagrams') }],
            },
            {
              eval_time: '12m',
              alertname: 'HousePartyPeerNotAdmitted',
              exp_alerts: [{ exp_labels: { severity: 'warning', pod: 'b' }, exp_annotations: expect('HousePartyPeerNotAdmitted', { pod: 'b' }) }],
            },
          ],
        },
      ],
    }
    const testFile = join(dir, 'rules.test.yml')
    await writeFile(testFile, stringify(tests))
    const result = spawnSync('promtool', ['test', 'rules', testFile], { encoding: 'utf8' })
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`)
    assert.match(result.stdout, /SUCCESS/)

    /** The annotations an alert should carry, as the rules render them (with {{ $value }} and {{ $labels }} filled in). */
    function expect(alert: string, labels: Record<string, string> = {}): Record<string, string> {
      const values: Record<string, string> = {
        HousePartyDegraded: '3',
        HousePartyGuestsDropped: '4',
        HousePartyWrongKeyDatagrams: '1',
        HousePartyPeerNotAdmitted: '0',
      }
      const rule = rules.find((r) => r.alert === alert) as Rule & { annotations: Record<string, string> }
      const out: Record<string, string> = {}
      for (const [k, v] of Object.entries(rule.annotations)) {
        out[k] = v
          .replace('{{ $value | humanize }}', values[alert] ?? '')
          .replace('{{ $value }}', values[alert] ?? '')
          .replace('{{ $labels.pod }}', labels.pod ?? '')
      }
      return out
    }
  })
})
