import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'

const ROOT = resolve(import.meta.dirname, '../../..')

/**
 * What the test kubelet needs of the `houseparty` image, read from the
 * Dockerfile's final stage (never a hand-written copy): its entrypoint,
 * default command and environment. Paths inside the image map onto this
 * checkout: /app is the repository (so /app/dist/cli/main.js is the built
 * CLI), `node` is the Node.js running the tests, and tini, PID 1 in the
 * image, is left out (the test kubelet signals the peer directly).
 */
export interface ImageConfig {
  entrypoint: string[]
  cmd: string[]
  env: Record<string, string>
  /** Put first on PATH: `node` and `houseparty`, as the image has them. */
  binDir: string
}

function jsonArray(line: string | undefined): string[] {
  return line ? (JSON.parse(line) as string[]) : []
}

export async function housepartyImage(binDir: string): Promise<ImageConfig> {
  const text = await readFile(join(ROOT, 'Dockerfile'), 'utf8')
  const final = text.slice(text.lastIndexOf('\nFROM '))
  const joined = final.replace(/\\\n\s*/g, ' ')
  const entry = jsonArray(/^ENTRYPOINT (\[.*\])$/m.exec(joined)?.[1])
  const cmd = jsonArray(/^CMD (\[.*\])$/m.exec(joined)?.[1])
  const env: Record<string, string> = {}
  for (const m of joined.matchAll(/^ENV (.*)$/gm)) for (const pair of (m[1] ?? '').matchAll(/(\w+)=(\S+)/g)) env[pair[1] as string] = pair[2] as string
  const fromImage = (arg: string): string => (arg.startsWith('/app/') ? join(ROOT, arg.slice('/app/'.length)) : arg)
  // tini forwards signals as PID 1; here the peer is signalled directly.
  const withoutInit = entry[0]?.endsWith('/tini') ? entry.slice(entry[1] === '--' ? 2 : 1) : entry
  await mkdir(binDir, { recursive: true })
  await symlink(process.execPath, join(binDir, 'node')).catch(() => undefined)
  const cli = join(ROOT, 'dist/cli/main.js')
  await writeFile(join(binDir, 'houseparty'), `#!/bin/sh\nexec ${process.execPath} --initial-heap-size=128 ${cli} "$@"\n`, { mode: 0o755 })
  return { entrypoint: withoutInit.map(fromImage), cmd, env, binDir }
}
