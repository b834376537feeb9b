import { execFile } from 'node:child_process'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import type { K8sObject } from './helm.ts'

const run = promisify(execFile)
const ROOT = resolve(import.meta.dirname, '../..')

/** Where a kind's model lives: kubernetes-models for built-in kinds, the Prometheus Operator's for monitoring.coreos.com. */
function modelModule(o: K8sObject): string {
  const [group, version] = o.apiVersion.includes('/') ? (o.apiVersion.split('/') as [string, string]) : ['', o.apiVersion]
  if (group === 'monitoring.coreos.com') return `@kubernetes-models/prometheus-operator/${group}/${version}/${o.kind}`
  return group === '' ? `kubernetes-models/${version}/${o.kind}` : `kubernetes-models/${group}/${version}/${o.kind}`
}

/**
 * Checks rendered objects against the Kubernetes schemas: each is validated
 * by its kubernetes-models class (types, required fields, enums), and, since
 * those validators let unknown fields through, each is also type-checked as
 * an object literal of the model's interface: TypeScript's excess-property
 * check then rejects any field the API does not have, at any depth.
 * Returns one line per problem.
 */
export async function schemaProblems(objects: readonly K8sObject[]): Promise<string[]> {
  const problems: string[] = []
  for (const o of objects) {
    const where = `${o.kind} ${o.metadata?.name}`
    try {
      const mod = (await import(modelModule(o))) as Record<string, new (data: unknown) => { validate(): void }>
      const Model = mod[o.kind]
      if (!Model) problems.push(`${where}: no model for ${o.apiVersion} ${o.kind}`)
      else new Model(o).validate()
    } catch (err) {
      problems.push(`${where}: ${(err as Error).message.split('\n').slice(0, 6).join(' ')}`)
    }
  }
  problems.push(...(await unknownFields(objects)))
  return problems
}

async function unknownFields(objects: readonly K8sObject[]): Promise<string[]> {
  const dir = join(ROOT, 'node_modules/.cache/houseparty-chart-check', String(process.pid))
  await mkdir(dir, { recursive: true })
  try {
    const lines = objects.map((o, i) => {
      const type = `I${o.kind}`
      return `import type { ${type} as T${i} } from '${modelModule(o)}'\nexport const o${i}: T${i} = ${JSON.stringify(o)}\n`
    })
    await writeFile(join(dir, 'objects.ts'), lines.join('\n'))
    await writeFile(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', skipLibCheck: true, types: [] },
        files: ['objects.ts'],
      }),
    )
    try {
      await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { cwd: dir, maxBuffer: 16 * 1024 * 1024 })
      return []
    } catch (err) {
      const out = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`
      return out
        .split('\n')
        .filter((l) => l.includes('error TS'))
        .map((l) => {
          const index = Number(/objects\.ts\((\d+),/.exec(l)?.[1] ?? 0)
          const o = objects[Math.floor((index - 1) / 3)]
          return `${o ? `${o.kind} ${o.metadata?.name}` : 'object'}: ${l.replace(/^.*error TS\d+: /, '')}`
        })
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
