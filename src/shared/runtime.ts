/**
 * V8 flags a peer runs with. They can only be given on the node command
 * line (not in NODE_OPTIONS, not at run time), so every launcher passes
 * them: the `houseparty` shebang, and `houseparty party` for its peers.
 *
 * --initial-heap-size: a peer's JavaScript heap is small (about 20 MB) while
 * it moves hundreds of MB/s through buffers. V8 counts those buffers against
 * a heap limit that starts small, so without this a put or get triggers a
 * full mark-compact every 30–60 MB of data (some 20 per 256 MiB). Starting
 * the limit at 128 MB lets young buffers die in cheap scavenges instead: in
 * `npm run bench -- files` a 1 GiB put costs the peers about 20% less CPU.
 *
 * --max-semi-space-size: under a burst of small puts V8 grows the young
 * generation to 128 MB, which stays resident: a peer holding 30,000 small
 * files peaked at 409 MiB RSS with 30–90 MB of live heap. Capped at 32 MB
 * per semi-space, the same run peaked at 294 MiB. At 16 MB, 60,000 puts and
 * the rebuild of a killed peer's fragments peaked 20–60 MiB lower again, and
 * a million puts 314 MiB against 362, at the same put rate (scavenges cost
 * what survives them, not the space they sweep). At 2 MB it also sets how
 * often buffers are freed: a buffer Node allocates per socket read dies
 * young, but only a scavenge frees it, and a read allocates little
 * JavaScript beside it. With 16 MB a 1 GiB put ran 23 scavenges and 14 full
 * mark-compacts on the coordinator (--trace-gc): between scavenges V8's count
 * of memory outside its heap reached its 64 MB trigger, which runs a
 * mark-compact (marked by helper threads). At 2 MB the same put runs none: it
 * costs 17% less CPU and runs about 20% faster, peak RSS is lower, and small
 * puts run at about the same rate. What 2 MB promotes (a listing page's
 * merge outlives two scavenges) the first flag would leave in the old
 * generation up to its 128 MB: HeapGovernor (heap-governor.ts) collects it
 * after --heap-slack-mb instead. The price is paid by metadata work: with
 * 100,000 small files, 16 MB puts ran about 30% faster and served the full
 * listing with 20–35% less CPU, but a 1 GiB put ran 14–17 full collections
 * and peaked near 315 MiB (8 MB: the same collections; 4 MB: one, and 30 MiB
 * more). BENCHMARKS.md has the runs.
 */
export const PEER_V8_FLAGS: readonly string[] = ['--initial-heap-size=128', '--max-semi-space-size=2']

/** The PEER_V8_FLAGS this process was not started with (compared by flag name). */
export function missingPeerFlags(execArgv: readonly string[] = process.execArgv): string[] {
  const given = new Set(execArgv.map(flagName))
  return PEER_V8_FLAGS.filter((f) => !given.has(flagName(f)))
}

function flagName(arg: string): string {
  return arg.split('=')[0]?.replace(/_/g, '-') ?? arg
}

/**
 * The oldest Node.js House Party runs on: 22.13 is the first 22 with
 * node:sqlite (the peer's index) without a flag. package.json "engines" says
 * the same (a test keeps them in step).
 */
export const MIN_NODE = '22.13'

/** Whether `version` (x.y.z) is at least MIN_NODE. */
export function supportedNode(version: string): boolean {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number)
  const [minMajor = 0, minMinor = 0] = MIN_NODE.split('.').map(Number)
  return major > minMajor || (major === minMajor && minor >= minMinor)
}

/** A one-line refusal when this Node.js is too old, else undefined. */
export function unsupportedRuntime(version: string = process.versions.node): string | undefined {
  if (supportedNode(version)) return undefined
  return `houseparty needs Node.js ${MIN_NODE} or newer; this is Node.js ${version}. Install a current LTS release (see the README).`
}
