import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { PartyApi } from '../../src/cli/client.ts'
import { bytesOf, fileUrl, putBytes, sha256 } from '../helpers/files.ts'
import { partiesForThisFile, startParty, waitForAgreement } from '../helpers/party.ts'

const newParty = partiesForThisFile()
const MiB = 1024 * 1024

/** What a read through a peer came back with: the right bytes, an error code, or no answer at all (the peer was gone). */
type Outcome = 'ok' | 'wrong-bytes' | 'refused' | string

async function readThrough(api: string, name: string, want: string): Promise<Outcome> {
  let res: Response
  try {
    res = await fetch(fileUrl(api, name), { signal: AbortSignal.timeout(30_000) })
  } catch {
    return 'refused'
  }
  const body = Buffer.from(await res.arrayBuffer().catch(() => new ArrayBuffer(0)))
  if (res.status === 200) return sha256(body) === want ? 'ok' : 'wrong-bytes'
  const code = (JSON.parse(body.toString('utf8') || '{}') as { error?: { code?: string } }).error?.code
  if (code === 'ERR_LEAVING' || code === 'ERR_NOT_ADMITTED') assert.ok(res.headers.get('retry-after'), `${code} comes with Retry-After`)
  return `${res.status} ${code ?? body.toString('utf8').slice(0, 300)}`
}

describe('a peer that stops never answers a read falsely', () => {
  // Regression: a GET through a peer in the middle of its leave got "503 ERR_NOT_ENOUGH_FRAGMENTS: only 0 of 3
  // fragments usable" for a whole file: after its goodbye the peer knew no guests, but its API still served reads.
  for (const onStop of ['restart', 'handoff'] as const) {
    it(`while it leaves (--on-stop ${onStop}) every read through it is right, ERR_LEAVING, or refused; the CLI reads through another guest`, async () => {
      const { party } = await newParty(5, ['--on-stop', onStop])
      await startParty(party, 5)
      const data = bytesOf(2 * MiB + 7, 41)
      const want = sha256(data)
      for (let i = 0; i < 4; i++) assert.equal((await putBytes(party.peer(0).api, `leave/${i}`, data)).status, 201)
      const leaving = party.peer(4).api
      const outcomes = new Map<Outcome, number>()
      let exited = false
      const reader = async (n: number): Promise<void> => {
        for (let round = 0; !exited; round++) {
          const outcome = await readThrough(leaving, `leave/${(n + round) % 4}`, want)
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
          if (outcome === 'refused') return
        }
      }
      // A few reads finish before the stop: the readers are up and the peer serves while it is a guest.
      const readers = Array.from({ length: 6 }, (_, n) => reader(n))
      while ((outcomes.get('ok') ?? 0) < 6) await new Promise((r) => setImmediate(r))
      // The CLI's client asks the leaving peer and must end up with the file all the same.
      const cli = new PartyApi({ base: `http://${leaving}`, label: leaving, token: undefined })
      party.signal(4, 'SIGTERM')
      const cliReads = Array.from({ length: 4 }, async (_, i) => {
        const res = await cli.request(`/files/leave/${i}`, { signal: AbortSignal.timeout(60_000) }).catch((err: Error) => err)
        if (res instanceof Error) return res.message.includes('ERR_PARTY_UNREACHABLE') || /cannot reach/.test(res.message) ? 'refused' : res.message
        return res.status === 200 && sha256(Buffer.from(await res.arrayBuffer())) === want ? 'ok' : `${res.status}`
      })
      await party.exited(4, 60_000)
      exited = true
      await Promise.all(readers)
      const byCli = await Promise.all(cliReads)
      const bad = [...outcomes].filter(([o]) => !['ok', 'refused', '503 ERR_LEAVING', '503 ERR_NOT_ADMITTED'].includes(o))
      assert.deepEqual(bad, [], `reads through the leaving peer: ${JSON.stringify([...outcomes])}`)
      assert.ok((outcomes.get('ok') ?? 0) >= 6, 'reads succeeded while it was a guest')
      // Each CLI read either finished on the leaving peer or on another guest; refused only if it asked after the exit.
      assert.deepEqual(
        byCli.filter((o) => o !== 'ok' && o !== 'refused'),
        [],
        `CLI reads: ${JSON.stringify(byCli)}`,
      )
      await waitForAgreement(party, [0, 1, 2, 3], 4, 30_000)
    })
  }
})
