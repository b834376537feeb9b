import { spawn } from 'node:child_process'
import { globSync } from 'node:fs'
import { relative, resolve } from 'node:path'
import { createInterface } from 'node:readline'

/**
 * `npm test`'s test run: the test files in three lanes at once, each lane
 * one file at a time. Most of the suite's time is spent waiting (on failure
 * detection, on pods, on a control plane), so lanes share two cores well,
 * and the deadlines are generous enough for the load they make together.
 *
 *   cluster: the local Kubernetes control plane tests (never two at once:
 *            they share the machine's mount points and its control plane cache)
 *   long:    the longest multi-process files
 *   rest:    unit tests and every other multi-process file
 *
 * Every line is prefixed with its lane; the run fails if any lane fails.
 * Arguments, if any, are passed to every `node --test` (e.g. --test-name-pattern).
 */
const ROOT = resolve(import.meta.dirname, '..')
const files = (pattern: string): string[] => globSync(pattern, { cwd: ROOT }).sort()
const LONG = new Set(['test/integration/chaos.test.ts', 'test/integration/membership-faults.test.ts', 'test/integration/files.test.ts'])
const all = [...files('test/unit/**/*.test.ts'), ...files('test/integration/**/*.test.ts')]
const lanes = [
  { name: 'cluster', files: files('test/e2e/cluster/**/*.test.ts') },
  { name: 'long', files: all.filter((f) => LONG.has(f)) },
  { name: 'rest', files: all.filter((f) => !LONG.has(f)) },
].filter((l) => l.files.length > 0)

const width = Math.max(...lanes.map((l) => l.name.length))
const started = performance.now()

function runLane(lane: { name: string; files: string[] }): Promise<{ name: string; code: number; summary: string[]; seconds: number }> {
  const t0 = performance.now()
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...process.argv.slice(2), ...lane.files], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    // npm test has just built dist/: peers and CLI commands start from it (see test/helpers/party.ts).
    env: { ...process.env, HOUSEPARTY_TEST_BUILT: '1' },
  })
  const tag = `[${lane.name.padEnd(width)}] `
  const summary: string[] = []
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      process.stdout.write(`${tag}${line}\n`)
      if (/^ℹ (tests|pass|fail|cancelled|skipped) /.test(line)) summary.push(line.slice(2))
    })
  }
  return new Promise((done) => {
    child.on('close', (code, signal) => done({ name: lane.name, code: code ?? (signal ? 1 : 0), summary, seconds: (performance.now() - t0) / 1000 }))
  })
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  // The lanes are in this process group and get the signal too; wait for them to tear down what they made.
  process.on(signal, () => undefined)
}
const results = await Promise.all(lanes.map(runLane))
process.stdout.write(`\ntest lanes (${((performance.now() - started) / 1000).toFixed(0)} s in all):\n`)
for (const r of results) {
  const files = lanes.find((l) => l.name === r.name)?.files.map((f) => relative('test', f)).length
  process.stdout.write(`  ${r.name.padEnd(width)}  ${r.code === 0 ? 'ok    ' : 'FAILED'}  ${r.seconds.toFixed(0)} s, ${files} files: ${r.summary.join(', ')}\n`)
}
process.exit(results.some((r) => r.code !== 0) ? 1 : 0)
