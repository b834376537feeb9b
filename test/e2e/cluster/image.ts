import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { join, relative, resolve } from 'node:path'

const ROOT = resolve(import.meta.dirname, '../../..')

/**
 * What the test kubelet needs of the `houseparty` image, read from the
 * Dockerfile's final stage (never a hand-written copy): its entrypoint,
 * default command and environment. Paths inside the image map onto this
 * checkout: /app is the repository (so /app/dist/cli/main.js is the built
 * CLI), `node` is the Node.js running the tests, and tini, PID 1 in the
 * image, is left out (the test kubelet signals the peer directly).
 *
 * A pod mounts an emptyDir over /tmp, which would hide a checkout under
 * /tmp (a CI clone, say): so each pod first bind-mounts the checkout onto
 * `appDir` (outside /tmp) in its own mount namespace, and every path the
 * pod uses goes through there.
 */
export interface ImageConfig {
  entrypoint: string[]
  cmd: string[]
  env: Record<string, string>
  /** Put first on PATH: `node` and `houseparty`, as the image has them. */
  binDir: string
  /** The checkout, which each pod bind-mounts onto `appDir` before anything else. */
  source: string
  appDir: string
}

function jsonArray(line: string | undefined): string[] {
  return line ? (JSON.parse(line) as string[]) : []
}

export async function housepartyImage(binDir: string, appDir: string): Promise<ImageConfig> {
  const text = await readFile(join(ROOT, 'Dockerfile'), 'utf8')
  const final = text.slice(text.lastIndexOf('\nFROM '))
  const joined = final.replace(/\\\n\s*/g, ' ')
  const entry = jsonArray(/^ENTRYPOINT (\[.*\])$/m.exec(joined)?.[1])
  const cmd = jsonArray(/^CMD (\[.*\])$/m.exec(joined)?.[1])
  const env: Record<string, string> = {}
  for (const m of joined.matchAll(/^ENV (.*)$/gm)) for (const pair of (m[1] ?? '').matchAll(/(\w+)=(\S+)/g)) env[pair[1] as string] = pair[2] as string
  const fromImage = (arg: string): string => (arg.startsWith('/app/') ? join(appDir, arg.slice('/app/'.length)) : arg)
  // The Node.js running the tests, as a pod sees it (through appDir when it is the checkout's own).
  const rel = relative(ROOT, process.execPath)
  const node = rel.startsWith('..') ? process.execPath : join(appDir, rel)
  // tini forwards signals as PID 1; here the peer is signalled directly.
  const withoutInit = entry[0]?.endsWith('/tini') ? entry.slice(entry[1] === '--' ? 2 : 1) : entry
  await mkdir(binDir, { recursive: true })
  await mkdir(appDir, { recursive: true })
  await symlink(node, join(binDir, 'node')).catch(() => undefined)
  const cli = join(appDir, 'dist/cli/main.js')
  await writeFile(join(binDir, 'houseparty'), `#!/bin/sh\nexec ${node} --initial-heap-size=128 --max-semi-space-size=2 ${cli} "$@"\n`, { mode: 0o755 })
  return { entrypoint: withoutInit.map(fromImage), cmd, env, binDir, source: ROOT, appDir }
}
