import { createSocket } from 'node:dgram'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, afterEach, beforeEach } from 'node:test'
import { API_PORT_OFFSET, LocalParty, S3_PORT_OFFSET } from '../../src/cli/local-party.ts'
import type { PartyHealth } from '../../src/peer/recovery/index.ts'
import { describeError, FatalWait, waitFor } from './wait.ts'

/** The compiled CLI (`npm run build`), as installed from npm or in the image: benchmarks run peers from it. */
export const BUILT_CLI = resolve(import.meta.dirname, '../../dist/cli/main.js')
/**
 * The CLI the tests run peers and commands from: the source, so a test run
 * on its own always tests the code as it is; `npm test` (test/run.ts, right
 * after the build) sets HOUSEPARTY_TEST_BUILT=1 for the compiled one, which
 * starts in half the CPU time (no type stripping), for the hundreds of
 * processes the suite starts.
 */
export const CLI = process.env.HOUSEPARTY_TEST_BUILT === '1' ? BUILT_CLI : resolve(import.meta.dirname, '../../src/cli/main.ts')

export interface GuestsReply {
  self: string
  status: string
  epoch: number
  guests: { id: string; address: string; apiPort: number; since: number; incarnation: number }[]
}

async function portFree(port: number): Promise<boolean> {
  const tcp = await new Promise<boolean>((res) => {
    const s = createServer()
      .once('error', () => res(false))
      .listen(port, '127.0.0.1', () => s.close(() => res(true)))
  })
  if (!tcp) return false
  return new Promise<boolean>((res) => {
    const u = createSocket('udp4').once('error', () => res(false))
    u.bind(port, '127.0.0.1', () => u.close(() => res(true)))
  })
}

/**
 * Blocks of 200 ports from 20,000 (peers, their APIs and S3 APIs: see local-party.ts): below Linux's ephemeral
 * range (32768+), so an outgoing connection never takes a peer's port.
 */
const PORT_BLOCKS = 60
const BLOCK = 200

/**
 * The blocks this process may pick from. Under `npm test` (test/run.ts) the lanes run test files at once, and two
 * of them choosing the same free block would both see it free and then collide on bind: each lane has its own share.
 * Run on its own, a test file picks from them all.
 */
function portBlocks(): { first: number; count: number } {
  const lane = Number(process.env.HOUSEPARTY_TEST_LANE)
  const lanes = Number(process.env.HOUSEPARTY_TEST_LANES)
  if (!Number.isInteger(lane) || !Number.isInteger(lanes) || lane < 1 || lane > lanes) return { first: 0, count: PORT_BLOCKS }
  const count = Math.floor(PORT_BLOCKS / lanes)
  return { first: (lane - 1) * count, count }
}

/** Finds a base port whose whole block (peers, APIs) is free, starting at a random spot of this process's share. */
export async function freeBasePort(peers: number): Promise<number> {
  const { first, count } = portBlocks()
  for (let tries = 0; tries < 50; tries++) {
    const base = 20_000 + (first + Math.floor(Math.random() * count)) * BLOCK
    const ports = [...Array(peers).keys()].flatMap((i) => [base + i, base + API_PORT_OFFSET + i, base + S3_PORT_OFFSET + i])
    const free = await Promise.all(ports.map(portFree))
    if (free.every(Boolean)) return base
  }
  throw new Error('no free port block found')
}

export async function newParty(peers: number, peerArgs: string[] = [], cli = CLI): Promise<{ party: LocalParty; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'houseparty-test-'))
  const party = new LocalParty({ dir, basePort: await freeBasePort(peers), cli, peerArgs: ['--log-level', 'info', ...peerArgs] })
  await party.prepare()
  return {
    party,
    cleanup: async () => {
      await party.stopAll(3_000)
      if (!process.env.HOUSEPARTY_KEEP_TEST_DIRS) await rm(dir, { recursive: true, force: true })
    },
  }
}

/**
 * For a test file: a newParty() whose parties are stopped and removed even when a test fails half-way. One made
 * inside a test ends with that test, so a file's finished tests leave no idle party loading the machine while the
 * next one starts its peers; one made in a `before` hook, shared by the tests after it, ends with the file.
 */
export function partiesForThisFile(): typeof newParty {
  const cleanups: (() => Promise<void>)[] = []
  let firstOfTest = Number.POSITIVE_INFINITY
  const cleanFrom = async (first: number): Promise<void> => {
    for (const c of cleanups.splice(first)) await c()
  }
  beforeEach(() => {
    firstOfTest = cleanups.length
  })
  afterEach(async () => {
    await cleanFrom(firstOfTest)
    firstOfTest = Number.POSITIVE_INFINITY
  })
  after(() => cleanFrom(0))
  return async (peers, peerArgs) => {
    const p = await newParty(peers, peerArgs)
    cleanups.push(p.cleanup)
    return p
  }
}

export async function guestsOf(api: string): Promise<GuestsReply> {
  const res = await fetch(`http://${api}/guests`, { signal: AbortSignal.timeout(2_000) })
  return (await res.json()) as GuestsReply
}

/**
 * How long peers just started get to agree: a peer opens its HTTP API last (after its stores, sockets, membership and
 * recovery), and under `npm test` eight of them may start on two cores that other lanes' parties and a control plane share.
 */
const AGREE_MS = 30_000

/** Starts peers 0..n-1 at the same moment (0 founds, the rest join through it) and waits until all agree. */
export async function startParty(party: LocalParty, n: number, timeoutMs = AGREE_MS): Promise<GuestsReply[]> {
  const all = [...Array(n).keys()]
  await Promise.all(all.map((i) => party.start(i)))
  return waitForAgreement(party, all, n, timeoutMs)
}

/** Waits until every listed peer reports the same epoch and exactly `expected` guests. */
export async function waitForAgreement(party: LocalParty, indexes: number[], expected: number, timeoutMs = AGREE_MS): Promise<GuestsReply[]> {
  /** The peer whose /guests failed last, if the last poll failed on one. */
  let silent: number | undefined
  try {
    return await waitFor(
      `${indexes.length} peers to agree on ${expected} guests`,
      async () => {
        for (const i of indexes) {
          if (!party.isRunning(i)) {
            const tail = (await party.readLog(i)).split('\n').slice(-8).join('\n')
            throw new FatalWait(
              `peer ${i} is not running (exit ${party.peer(i).process?.exitCode ?? party.peer(i).process?.signalCode}); its log ends:\n${tail}`,
            )
          }
        }
        silent = undefined
        const lists = await Promise.all(
          indexes.map((i) =>
            guestsOf(party.peer(i).api).catch((err: unknown) => {
              silent = i
              throw new Error(`peer ${i} did not answer: ${describeError(err)}`)
            }),
          ),
        )
        const first = lists[0]
        if (!first || first.guests.length !== expected) return false
        const ids = (g: GuestsReply): string => `${g.epoch}|${g.guests.map((x) => x.id).join(',')}`
        return lists.every((l) => ids(l) === ids(first)) ? lists : false
      },
      { timeoutMs, intervalMs: 100 },
    )
  } catch (err) {
    if (err instanceof FatalWait || silent === undefined) throw err
    // What the silent peer last logged, read once the wait has given up ("fetch failed" alone says nothing of why).
    const tail = (await party.readLog(silent)).trimEnd().split('\n').slice(-3).join('\n')
    throw new Error(`${(err as Error).message}; peer ${silent}'s log ends:\n${tail}`)
  }
}

export async function metric(api: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`http://${api}/metrics`, { signal: AbortSignal.timeout(2_000) })).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `))
  return line ? Number(line.split(' ').at(-1)) : 0
}

/** GET /health/party on one peer: the whole party's file health. */
export async function partyHealth(api: string): Promise<PartyHealth> {
  const res = await fetch(`http://${api}/health/party`, { signal: AbortSignal.timeout(10_000) })
  if (!res.ok) throw new Error(`GET /health/party: ${res.status} ${await res.text()}`)
  return (await res.json()) as PartyHealth
}

/** A metric summed over several peers of a party. */
export async function sumMetric(party: LocalParty, peers: readonly number[], name: string, labels = ''): Promise<number> {
  const values = await Promise.all(peers.map((i) => metric(party.peer(i).api, name, labels)))
  return values.reduce((a, b) => a + b, 0)
}
