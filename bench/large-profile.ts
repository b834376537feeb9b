import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalParty } from '../src/cli/local-party.ts'
import { BUILT_CLI, freeBasePort, startParty } from '../test/helpers/party.ts'
import { summarize } from './cpu-profile.ts'
import { expectedHash, getHash, put } from './files.ts'
import { machine, today } from './lib.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB
const PEERS = 5
const ROUNDS = 3

/**
 * Where the peers' CPU goes for large files: 5 peers run with `--cpu-prof`
 * while ROUNDS 1 GiB puts run (one phase), then, restarted on their data
 * dirs with a fresh profile directory, while ROUNDS gets of the same file
 * run (the other). Each phase's profiles are summed by module
 * (cpu-profile.ts): the flame graph's self time, flattened.
 */
export async function largeProfileBench(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'houseparty-large-profile-'))
  const blocks = Array.from({ length: 16 }, () => randomBytes(MiB))
  const want = expectedHash(GiB, blocks)
  const basePort = await freeBasePort(PEERS)
  const phase = async (name: 'put' | 'get'): Promise<string> => {
    const profiles = join(dir, `prof-${name}`)
    const party = new LocalParty({
      dir: join(dir, 'party'),
      basePort,
      cli: BUILT_CLI,
      // Stopped between the phases as for a restart: the data stays where it is for the gets.
      peerArgs: ['--log-level', 'warn', '--on-stop', 'restart'],
      env: { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profiles}` },
    })
    await party.prepare()
    try {
      await startParty(party, PEERS, 60_000)
      for (let r = 0; r < ROUNDS; r++) {
        if (name === 'put') await put(party.peer(r % PEERS).api, 'bench/1GiB', GiB, blocks)
        else if ((await getHash(party.peer((r + 1) % PEERS).api, 'bench/1GiB')) !== want) throw new Error('a get returned other bytes')
      }
    } finally {
      // A graceful stop: a peer writes its profile as it exits.
      await party.stopAll(30_000)
    }
    return summarize(profiles, 15)
  }
  try {
    const puts = await phase('put')
    const gets = await phase('get')
    return `## Where the CPU goes: large files

${today()}, ${machine()}. ${PEERS} local peers (2+1) run with \`--cpu-prof\` (\`npm run bench -- large-profile\`): ${ROUNDS} puts of a 1 GiB file
through one peer each, then (the peers restarted on their data dirs) ${ROUNDS} gets of it. Self time summed over every peer, by module: the
project's files by path, dependencies by package, Node's internals by module, V8's and the kernel's work as "native". Startup and
the graceful stop are in it too (small next to ${ROUNDS} GiB). Reading the rows: \`native writev\` and \`writeBuffer\` are socket and file
writes, the peers' TLS encryption included (OpenSSL runs inside them); \`node:zlib\` is CRC-32 (\`zlib.crc32\`, every chunk);
\`node:internal/crypto/hash\` is sha256 of files and fragments' digests and the HMACs of the peer protocol.

Puts:

${puts}

Gets:

${gets}
`
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
