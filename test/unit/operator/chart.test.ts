import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition'
import { parse, parseAllDocuments } from 'yaml'
import { CHART, k8sTool } from '../../helpers/helm.ts'

const run = promisify(execFile)
const SRC = resolve(import.meta.dirname, '../../../src/operator')

const GROUPS: Record<string, string> = { StatefulSet: 'apps', Lease: 'coordination.k8s.io', CustomObject: 'houseparty.dev', NetworkPolicy: 'networking.k8s.io' }
const VERBS: Record<string, string> = { read: 'get', get: 'get', list: 'list', create: 'create', replace: 'update', patch: 'patch', delete: 'delete' }
const plural = (kind: string): string => kind.toLowerCase().replace(/y$/, 'ie').concat('s')

/** Every (group, resource, verb) the operator's code calls, read from the client-node methods it uses. */
async function callsInCode(): Promise<Set<string>> {
  const out = new Set<string>()
  const files = (await readdir(SRC, { recursive: true })).filter((f) => f.endsWith('.ts'))
  for (const f of files) {
    const text = await readFile(join(SRC, f), 'utf8')
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

  it('the chart’s Role grants exactly the verbs the operator’s code uses, no more, no fewer', async () => {
    const helm = await k8sTool('helm')
    const { stdout } = await run(helm, ['template', 'hp', CHART, '--set', 'operator.enabled=true', '--show-only', 'templates/operator.yaml'])
    const role = parseAllDocuments(stdout)
      .map((d) => d.toJSON() as { kind: string; rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] })
      .find((o) => o?.kind === 'Role')
    assert.ok(role, 'the chart renders a Role for the operator')
    const granted = new Set<string>()
    for (const rule of role.rules) for (const g of rule.apiGroups) for (const r of rule.resources) for (const v of rule.verbs) granted.add(`${g}/${r}:${v}`)
    const used = await callsInCode()
    assert.deepEqual([...granted].filter((x) => !used.has(x)).sort(), [], 'verbs granted that the code never uses')
    assert.deepEqual([...used].filter((x) => !granted.has(x)).sort(), [], 'verbs the code uses that the Role does not grant')
  })
})
