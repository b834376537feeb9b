import { clusterBench } from './cluster.ts'
import { codecBench } from './codec.ts'
import { atRestBench, peerTlsBench } from './encryption.ts'
import { filesBench, largeFileBench } from './files.ts'
import { inlineBench } from './inline.ts'
import { largeProfileBench } from './large-profile.ts'
import { writeSection } from './lib.ts'
import { membershipBench } from './membership.ts'
import { membershipScaleBench } from './membership-scale.ts'
import { recoveryBench } from './recovery.ts'
import { s3Bench } from './s3.ts'
import { scaleBench } from './scale.ts'
import { smallProfileBench } from './small-profile.ts'
import { stripesBench } from './stripes.ts'

/** npm run bench [-- suite...]: runs the suites and rewrites their sections of BENCHMARKS.md. */
const suites: Record<string, () => Promise<string>> = {
  membership: () => membershipBench(),
  'membership-scale': () => membershipScaleBench(),
  codec: () => codecBench(),
  files: () => filesBench(),
  large: () => largeFileBench(),
  recovery: () => recoveryBench(),
  cluster: () => clusterBench(),
  scale: () => scaleBench(process.argv.slice(2)),
  'small-profile': () => smallProfileBench(),
  inline: () => inlineBench(),
  s3: () => s3Bench(),
  'peer-tls': () => peerTlsBench(),
  'at-rest': () => atRestBench(),
  'large-profile': () => largeProfileBench(),
  stripes: () => stripesBench(),
}

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'))
for (const name of wanted.length ? wanted : Object.keys(suites)) {
  const run = suites[name]
  if (!run) {
    console.error(`unknown suite ${name}; suites: ${Object.keys(suites).join(', ')}`)
    process.exit(2)
  }
  const body = await run()
  await writeSection(new URL('../BENCHMARKS.md', import.meta.url).pathname, name, body)
  console.log(body)
}
