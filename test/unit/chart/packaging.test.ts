import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import { dashboardJson } from '../../../scripts/dashboard.ts'
import { generated } from '../../../scripts/docs.ts'
import { renderManifests } from '../../../scripts/manifests.ts'
import { CHART, renderChart } from '../../helpers/helm.ts'

const run = promisify(execFile)

/** Fails with the first line where a generated file and what generates it part ways (not with both files whole). */
function sameText(actual: string, expected: string, what: string): void {
  if (actual === expected) return
  const a = actual.split('\n')
  const e = expected.split('\n')
  const line = a.findIndex((l, i) => l !== e[i])
  const at = line === -1 ? a.length : line
  assert.fail(`${what}: differs at line ${at + 1}:\n  checked in: ${a[at] ?? '(end)'}\n  generated:  ${e[at] ?? '(end)'}`)
}
const ROOT = resolve(import.meta.dirname, '../../..')

describe('packaging: image, plain manifests, dashboard', () => {
  it('the Dockerfile has no lint findings, and builds a non-root, read-only image without dev dependencies', async () => {
    const lint = createRequire(import.meta.url).resolve('dockerfile-utils/bin/dockerfile-utils')
    // dockerfile-utils exits 0 on warnings: any finding it prints counts.
    const { stdout, stderr } = await run(process.execPath, [lint, 'lint', join(ROOT, 'Dockerfile')])
    assert.equal(`${stdout}${stderr}`.trim(), '', 'dockerfile-utils lint findings')
    const text = await readFile(join(ROOT, 'Dockerfile'), 'utf8')
    const froms = [...text.matchAll(/^FROM (\S+)/gm)].map((m) => m[1])
    assert.ok(froms.length >= 2, 'multi-stage')
    for (const f of froms) assert.match(f ?? '', /^node:24-/, 'on the official Node.js 24 image')
    assert.match(text, /npm prune --omit=dev/, 'no dev dependencies in the final image')
    assert.match(text, /^USER node$/m, 'runs as the unprivileged node user')
    assert.match(
      text,
      /^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "--initial-heap-size=128", "--max-semi-space-size=2", "\/app\/dist\/cli\/main\.js"\]$/m,
      'tini is PID 1 and forwards SIGTERM',
    )
    const ignore = await readFile(join(ROOT, '.dockerignore'), 'utf8')
    assert.match(ignore, /^\*$/m, 'the build context is only what the build needs')
  })

  it('the configuration tables and the chart values schema are the ones the settings tables make (npm run docs)', async () => {
    for (const [path, text] of generated()) sameText(await readFile(join(ROOT, path), 'utf8'), text, `${path} is not what npm run docs makes`)
  })

  it('helm refuses a values file that names an unknown peer setting, or one out of its bounds', async () => {
    await assert.rejects(renderChart({ set: { 'config.HOUSEPARTY_REBUILD_DELAY': '1' } }), /HOUSEPARTY_REBUILD_DELAY|schema/)
    await assert.rejects(renderChart({ set: { 'coding.parityFragments': '40' } }), /parityFragments|maximum/)
    await assert.rejects(renderChart({ set: { onStop: 'never' } }), /onStop|enum|must be one of/)
  })

  it('manifests/ is the chart rendered (npm run manifests), not a copy drifting from it', async () => {
    const checkedIn = await readFile(join(ROOT, 'manifests/houseparty.yaml'), 'utf8')
    sameText(checkedIn, await renderManifests(), 'manifests/houseparty.yaml is not what the chart renders (npm run manifests)')
    assert.doesNotMatch(checkedIn, /^kind: Secret$/m, 'no party key baked into a file everyone downloads')
  })

  it('the dashboard is the one scripts/dashboard.ts makes (typed against @grafana/schema), and every panel queries Prometheus', async () => {
    const checkedIn = await readFile(join(CHART, 'dashboards/houseparty.json'), 'utf8')
    sameText(checkedIn, dashboardJson(), 'charts/houseparty/dashboards/houseparty.json is not what scripts/dashboard.ts makes (npm run dashboard)')
    const dashboard = JSON.parse(checkedIn) as { uid: string; panels: { title: string; datasource: { type: string }; targets: { expr: string }[] }[] }
    assert.equal(dashboard.uid, 'houseparty')
    for (const p of dashboard.panels) {
      assert.equal(p.datasource.type, 'prometheus', p.title)
      assert.ok(p.targets.length > 0 && p.targets.every((t) => t.expr.includes('houseparty_')), p.title)
    }
    const titles = dashboard.panels.map((p) => p.title).join(' | ')
    for (const want of [
      'Guests',
      'Membership events',
      'File health',
      'Bytes held per peer',
      'Puts and gets',
      'latency',
      'throughput',
      'Recovery',
      'Scrub',
      'Dropped datagrams',
    ]) {
      assert.ok(titles.includes(want), `a panel for ${want}`)
    }
  })
})
