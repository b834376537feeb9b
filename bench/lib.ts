import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import type { LocalParty } from '../src/cli/local-party.ts'
import { BUILT_CLI, newParty } from '../test/helpers/party.ts'

/**
 * A local party for a benchmark. Its peers run the compiled CLI, as users do
 * (running the .ts sources adds type stripping, some 35 MB of RSS per peer).
 */
export function benchParty(peers: number, peerArgs: string[] = []): Promise<{ party: LocalParty; cleanup: () => Promise<void> }> {
  if (!existsSync(BUILT_CLI)) throw new Error(`${BUILT_CLI} is missing: run npm run build (npm run bench does)`)
  return newParty(peers, peerArgs, BUILT_CLI)
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2
}

export function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  return `${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${process.platform}`
}

export function today(): string {
  return new Date().toISOString().slice(0, 10)
}

/** Replaces (or appends) one suite's section of BENCHMARKS.md, leaving the others. */
export async function writeSection(file: string, suite: string, body: string): Promise<void> {
  const start = `<!-- bench:${suite}:start -->`
  const end = `<!-- bench:${suite}:end -->`
  let text = await readFile(file, 'utf8').catch(() => '# Benchmarks\n\nWritten by `npm run bench`; each section says when and on what it was measured.\n')
  const block = `${start}\n${body.trim()}\n${end}`
  const i = text.indexOf(start)
  const j = text.indexOf(end)
  text = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`
  await writeFile(file, text)
}

/** Runs jobs 0 … count-1 on `workers` concurrent workers, each taking the next job when it is done with one. */
export async function inParallel(count: number, workers: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    for (let i = next++; i < count; i = next++) await job(i)
  }
  await Promise.all(Array.from({ length: workers }, worker))
}
