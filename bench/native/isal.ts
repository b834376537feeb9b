import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const SOURCE = new URL('./isal-codec.c', import.meta.url).pathname

/** Why ISA-L cannot be measured here, or false when it can. */
export function isalUnavailable(): string | false {
  if (!existsSync('/usr/bin/gcc')) return 'gcc is not installed (apt install gcc libisal-dev)'
  if (!existsSync('/usr/include/isa-l/erasure_code.h')) return 'ISA-L is not installed (apt install libisal-dev)'
  return false
}

/** ISA-L's encode and decode of one stripe at a time, GB/s (medians of `runs`), from isal-codec.c built now. */
export async function isalRates(k: number, m: number, stripe: number, rounds: number, runs: number): Promise<{ encode: number; decode: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'houseparty-isal-'))
  try {
    const bin = join(dir, 'isal-codec')
    await run('/usr/bin/gcc', ['-O2', '-o', bin, SOURCE, '-lisal'])
    const { stdout } = await run(bin, [k, m, stripe, rounds, runs].map(String))
    const [encode, decode] = stdout.trim().split(' ').map(Number) as [number, number]
    return { encode, decode }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
