import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition'
import { parse, parseAllDocuments } from 'yaml'
import { PEER_KUBERNETES_READS } from '../../../src/peer/kube/index.ts'
import { CHART, k8sTool } from '../../helpers/helm.ts'

const run = promisify(execFile)
const OPERATOR_SRC = resolve(import.meta.dirname, '../../../src/operator')

const GROUPS: Record<string, string> = { StatefulSet: 'apps', Lease: 'coordination.k8s.io', CustomObject: 'houseparty.dev', NetworkPolicy: 'networking.k8s.io' }
const VERBS: Record<string, string> = { read: 'get', get: 'get', list: 'list', create: 'create', replace: 'update', patch: 'patch', delete: 'delete' }
const plural = (kind: string): string => kind.toLowerCase().replace(/y$/, 'ie').concat('s')

/** Every (group, resource, verb) the code under `src` calls, read from the client-node methods it uses. */
async function callsInCode(src: string): Promise<Set<string>> {
  const out = new Set<string>()
  const files = (await readdir(src, { recursive: true })).filter((f) => f.endsWith('.ts'))
  for (const f of files) {
    const text = await readFile(join(src, f), 'utf8')
    for (const m of text.matchAll(/\.(read|get|list|create|replace|patch|delete)Namespaced(\w+?)(Status|Scale)?\(/g)) {
      const [, op, kind, sub] = m as unknown as [string, string, string, string | undefined]
      const group = GROUPS[kind] ?? ''
      const resources = kind === 'CustomObject' ? ['houseparties', 'partycrashers'] : [plural(kind)]
      for (const r of resources) out.add(`${group}/${r}${sub ? `/${sub.toLowerCase()}` : ''}:${VERBS[op]}`)
    }
    // An exec over a websocket is a GET: authorized as get before Kubernetes 1.31, as create since.
    if (/new Exec\(/.test(text)) for (const v of ['get', 'create']) out.add(`/pods/exec:${v}`)
    // Informers list and watch the custom resources.
    if (/makeInformer/.test(text)) for (const r of ['houseparties', 'partycrashers']) out.add(`houseparty.dev/${r}:watch`)
  }
  return out
}

describe('operator chart', () => {
  it('ships CRDs the Kubernetes schema accepts, each with a status subresource and printer columns', async () => {
    const dir = join(CHART, 'crds')
    const files = await readdir(dir)
    assert.deepEqual(files.sort(), ['houseparties.houseparty.dev.yaml', 'partycrashers.houseparty.dev.yaml'])
    for (const f of files) {
      const crd = new CustomResourceDefinition(parse(await readFile(join(dir, f), 'utf8')))
      crd.validate()
      assert.equal(`${crd.spec.names.plural}.${crd.spec.group}.yaml`, f)
      for (const v of crd.spec.versions) {
        assert.ok(v.subresources?.status, `${f}: status is a subresource (the operator patches only it)`)
        assert.ok((v.additionalPrinterColumns ?? []).length >= 4, `${f}: printer columns`)
      }
    }
  })

  async function grantedBy(template: string, set: string[]): Promise<Set<string> | undefined> {
    const helm = await k8sTool('helm')
    const { stdout } = await run(helm, ['template', 'hp', CHART, ...set.flatMap((s) => ['--set', s]), '--show-only', template])
    const roles = parseAllDocuments(stdout)
      .map((d) => d.toJSON() as { kind: string; rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] })
      .filter((o) => o?.kind === 'Role' || o?.kind === 'ClusterRole')
    if (roles.length === 0) return undefined
    const granted = new Set<string>()
    for (const role of roles)
      for (const rule of role.rules) for (const g of rule.apiGroups) for (const r of rule.resources) for (const v of rule.verbs) granted.add(`${g}/${r}:${v}`)
    return granted
  }

  // The peers' only calls (on SIGTERM, to tell a restart from a scale-down) are GETs built from one table.
  const peerReads = async (): Promise<Set<string>> => new Set(Object.values(PEER_KUBERNETES_READS).map((r) => `${r.group}/${r.resource}:get`))
  for (const { who, template, set, used: usedByCode } of [
    { who: 'operator', template: 'templates/operator.yaml', set: ['operator.enabled=true'], used: () => callsInCode(OPERATOR_SRC) },
    { who: 'peers', template: 'templates/peer-rbac.yaml', set: [], used: peerReads },
  ]) {
    it(`the chart’s Role for the ${who} grants exactly the verbs the code uses, no more, no fewer`, async () => {
      const granted = await grantedBy(template, set)
      assert.ok(granted, `the chart renders a Role for the ${who}`)
      const used = await usedByCode()
      assert.ok(used.size > 0)
      assert.deepEqual([...granted].filter((x) => !used.has(x)).sort(), [], 'verbs granted that the code never uses')
      assert.deepEqual([...used].filter((x) => !granted.has(x)).sort(), [], 'verbs the code uses that the Role does not grant')
    })
  }

  it('peers read only their node when onStop is not auto, and nothing when their zone is set by hand', async () => {
    assert.deepEqual([...((await grantedBy('templates/peer-rbac.yaml', ['onStop=handoff'])) ?? [])], ['/nodes:get'])
    assert.equal(await grantedBy('templates/peer-rbac.yaml', ['onStop=handoff', 'topology.zone=eu-1a']), undefined)
    const helm = await k8sTool('helm')
    const { stdout } = await run(helm, ['template', 'hp', CHART, '--set', 'topology.zone=eu-1a', '--show-only', 'templates/statefulset.yaml'])
    const env = (parse(stdout) as { spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } } }).spec.template.spec
      .containers[0]?.env
    assert.equal(env?.find((e) => e.name === 'HOUSEPARTY_ZONE')?.value, 'eu-1a')
    assert.equal(env?.find((e) => e.name === 'HOUSEPARTY_DOMAINS_FROM_NODE')?.value, 'false')
    await assert.rejects(run(helm, ['template', 'hp', CHART, '--set', 'topology.zone=no/slash']), /topology\/zone/)
  })

  it('peers get API access only when onStop=auto or node labels ask the API server; their account exists either way', async () => {
    const helm = await k8sTool('helm')
    for (const onStop of ['handoff', 'restart']) {
      const set = [`onStop=${onStop}`, 'topology.fromNodeLabels=false']
      assert.equal(await grantedBy('templates/peer-rbac.yaml', set), undefined, `onStop=${onStop} renders no peer Role`)
      const { stdout } = await run(helm, ['template', 'hp', CHART, ...set.flatMap((s) => ['--set', s]), '--show-only', 'templates/statefulset.yaml'])
      const pod = (parse(stdout) as { spec: { template: { spec: { automountServiceAccountToken: boolean; serviceAccountName?: string } } } }).spec.template.spec
      assert.equal(pod.automountServiceAccountToken, false, 'no token in the pod')
      // An upgrade that switches onStop still has pods of the old revision naming the account.
      assert.equal(pod.serviceAccountName, 'hp-houseparty-peer')
      const { stdout: rbac } = await run(helm, ['template', 'hp', CHART, ...set.flatMap((s) => ['--set', s]), '--show-only', 'templates/peer-rbac.yaml'])
      assert.deepEqual(
        parseAllDocuments(rbac).map((d) => (d.toJSON() as { kind: string } | null)?.kind),
        ['ServiceAccount'],
      )
    }
    // The values schema (made from the peer's settings table) refuses it first; the template's own check stands behind it.
    await assert.rejects(run(helm, ['template', 'hp', CHART, '--set', 'onStop=sometimes']), /at '\/onStop': value must be one of 'auto', 'handoff', 'restart'/)
    await assert.rejects(
      run(helm, ['template', 'hp', CHART, '--set', 'onStop=sometimes', '--skip-schema-validation']),
      /onStop \(sometimes\) must be auto, handoff or restart/,
    )
  })
})
