import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'

/**
 * Sums the V8 CPU profiles (`--cpu-prof`) in a directory: where the peers'
 * CPU went, by self time, grouped by the module that ran (the project's own
 * files by path, dependencies by package, Node's internals and native code by
 * kind). Used to summarise a burst of small puts in BENCHMARKS.md:
 *
 *   NODE_OPTIONS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench -- scale --scale-files=2000
 *   node bench/cpu-profile.ts /tmp/prof
 */
interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string }
  hitCount?: number
}

interface Profile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
}

const ROOT = join(import.meta.dirname, '..')

/** What a frame belongs to: a file of the project, a package, or a kind of runtime work. */
function groupOf(frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame
  if (!url)
    return functionName === '(garbage collector)' ? 'garbage collection' : functionName === '(idle)' ? 'idle' : `native ${functionName || '(anonymous)'}`
  if (url.startsWith('node:')) return url
  const path = url.replace(/^file:\/\//, '')
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)
  if (pkg) return `npm ${pkg[1]}`
  return relative(ROOT, path)
}

export async function summarize(dir: string, top = 25): Promise<string> {
  const self = new Map<string, number>()
  let busyMs = 0
  let wallMs = 0
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'))
  for (const file of files) {
    const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as Profile
    const total = profile.samples.length
    const spanMs = (profile.endTime - profile.startTime) / 1000
    wallMs = Math.max(wallMs, spanMs)
    const perSampleMs = total > 0 ? spanMs / total : 0
    for (const node of profile.nodes) {
      const group = groupOf(node.callFrame)
      const ms = (node.hitCount ?? 0) * perSampleMs
      if (group === 'idle' || group === 'native (program)') continue
      self.set(group, (self.get(group) ?? 0) + ms)
      busyMs += ms
    }
  }
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, top)
  const lines = rows.map(([group, ms]) => `| ${group} | ${(ms / 1000).toFixed(1)} s | ${((100 * ms) / busyMs).toFixed(1)}% |`)
  return [
    `${files.length} profiles, ${(busyMs / 1000).toFixed(1)} s of CPU in all (idle left out), longest ${(wallMs / 1000).toFixed(0)} s.`,
    '',
    '| where (self time) | CPU | share |',
    '|---|---|---|',
    ...lines,
  ].join('\n')
}

if (import.meta.main) {
  const dir = process.argv[2]
  if (!dir) {
    console.error('usage: node bench/cpu-profile.ts DIR')
    process.exit(2)
  }
  console.log(await summarize(dir))
}
