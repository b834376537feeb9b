#!/usr/bin/env -S node --initial-heap-size=128 --max-semi-space-size=2
import { unsupportedRuntime } from '../shared/runtime.ts'

// Checked before anything else loads: on an old Node.js, dependencies fail in obscure ways at import or run time.
const refusal = unsupportedRuntime()
if (refusal) {
  process.stderr.write(`${refusal}\n`)
  process.exit(1)
}
const { run } = await import('./program.ts')
await run(process.argv)
