import { spawn } from 'node:child_process'
import { globSync } from 'node:fs'
import { resolve } from 'node:path'
import { createInterface } from 'node:readline'

/**
 * `npm test`'s test run: the test files on three lanes at once, each lane
 * running one file at a time. Most of the suite's time is spent waiting (on
 * failure detection, on pods, on a control plane), so lanes share two cores
 * well, and the deadlines are generous enough for the load they make together.
 *
 * The local Kubernetes control plane tests go first on lane 1, one after the
 * other (they share the machine's mount points and its control plane cache).
 * Every other file waits in one queue, the longest first, and whichever lane
 * is free takes the next: the run ends soon after its longest chain of work.
 *
 * Every line is prefixed with its lane and file; the run fails if any file fails.
 * Arguments, if any, are passed to every `node --test` (e.g. --test-name-pattern).
 */
const ROOT = resolve(import.meta.dirname, '..')
const LANES = 3
const files = (pattern: string): string[] => globSync(pattern, { cwd: ROOT }).sort()

/** The files that take longest, longest first (about 230, 95, 70, 60, 50, 45 and 30 s on an idle 2-core machine); the rest follow in name order. */
const LONGEST = [
  'test/integration/chaos.test.ts',
  'test/integration/membership-faults.test.ts',
  'test/integration/cli.test.ts',
  'test/integration/membership.test.ts',
  'test/integration/s3.test.ts',
  'test/integration/files.test.ts',
  'test/integration/prometheus.test.ts',
]
const cluster = files('test/e2e/cluster/**/*.test.ts')
const others = [...files('test/integration/**/*.test.ts'), ...files('test/unit/**/*.test.ts')]
const queue = [...LONGEST.filter((f) => others.includes(f)), ...others.filter((f) => !LONGEST.includes(f))]

interface FileResult {
  file: string
  lane: number
  code: number
  seconds: number
  counts: Map<string, number>
  /** The spec reporter's "failing tests" block, which the summary repeats: a log's tail then shows why a file failed. */
  failures: string[]
}

/** At most this many lines of a file's failing tests go into the summary. */
const FAILURE_LINES = 40

function runFile(file: string, lane: number): Promise<FileResult> {
  const t0 = performance.now()
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...process.argv.slice(2), file], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    // npm test has just built dist/: peers and CLI commands start from it. Each lane picks local ports from its own
    // share of the range, so files running at once never choose the same ports (see test/helpers/party.ts).
    env: { ...process.env, HOUSEPARTY_TEST_BUILT: '1', HOUSEPARTY_TEST_LANE: String(lane), HOUSEPARTY_TEST_LANES: String(LANES) },
  })
  const tag = `[${lane} ${file.replace(/^test\//, '').replace(/\.test\.ts$/, '')}] `
  const counts = new Map<string, number>()
  const failures: string[] = []
  let inFailures = false
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      process.stdout.write(`${tag}${line}\n`)
      const m = /^ℹ (tests|pass|fail|cancelled|skipped) (\d+)$/.exec(line)
      if (m) counts.set(m[1] as string, Number(m[2]))
      if (line.startsWith('✖ failing tests:')) inFailures = true
      else if (inFailures && line.trim() !== '' && failures.length < FAILURE_LINES) failures.push(line)
    })
  }
  return new Promise((done) => {
    child.on('close', (code, signal) => done({ file, lane, code: code ?? (signal ? 1 : 0), seconds: (performance.now() - t0) / 1000, counts, failures }))
  })
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  // The files' processes are in this process group and get the signal too; wait for them to tear down what they made.
  process.on(signal, () => undefined)
}

const started = performance.now()
const results: FileResult[] = []
const laneSeconds: number[] = []
await Promise.all(
  Array.from({ length: LANES }, async (_, i) => {
    const lane = i + 1
    const mine = lane === 1 ? [...cluster] : []
    for (let file = mine.shift() ?? queue.shift(); file; file = mine.shift() ?? queue.shift()) results.push(await runFile(file, lane))
    laneSeconds[i] = (performance.now() - started) / 1000
  }),
)

const total = (what: string): number => results.reduce((n, r) => n + (r.counts.get(what) ?? 0), 0)
const failed = results.filter((r) => r.code !== 0)
process.stdout.write(`\ntest files (${((performance.now() - started) / 1000).toFixed(0)} s in all, ${results.length} files on ${LANES} lanes):\n`)
for (const [i, s] of laneSeconds.entries()) {
  const mine = results.filter((r) => r.lane === i + 1)
  process.stdout.write(`  lane ${i + 1}: ${s.toFixed(0)} s, ${mine.length} files (longest: ${mine.sort((a, b) => b.seconds - a.seconds)[0]?.file ?? '-'})\n`)
}
process.stdout.write(`  tests ${total('tests')}, pass ${total('pass')}, fail ${total('fail')}, cancelled ${total('cancelled')}, skipped ${total('skipped')}\n`)
for (const r of failed) {
  process.stdout.write(`  FAILED ${r.file} (lane ${r.lane}, exit ${r.code})\n`)
  for (const line of r.failures) process.stdout.write(`    ${line}\n`)
}
process.exit(failed.length > 0 ? 1 : 0)
