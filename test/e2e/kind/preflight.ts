import { kindUnavailable } from './requirements.ts'

/**
 * `npm run test:e2e` runs only the kind tests: when they cannot run here, it
 * says so and fails, rather than reporting 0 tests as a success.
 */
const why = kindUnavailable()
if (why) {
  process.stderr.write(`npm run test:e2e: the kind e2e cannot run on this machine: ${why}. Nothing was tested.\n`)
  process.exit(1)
}
