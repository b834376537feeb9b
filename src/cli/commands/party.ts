import type { Command } from 'commander'
import { HousePartyError } from '../../shared/errors.ts'
import { getJson, table } from '../client.ts'
import { LocalParty, MAX_LOCAL_PEERS } from '../local-party.ts'

interface GuestsReply {
  epoch: number
  guests: { id: string }[]
}

export function registerPartyCommand(program: Command): void {
  program
    .command('party')
    .description('run a local party: N peer processes on 127.0.0.1, stopped together on Ctrl-C')
    .option('--peers <n>', 'how many peers', '5')
    .option('--base-port <port>', 'peer i uses UDP/TCP port base+i and API port base+80+i', '7400')
    .option('--data <dir>', 'where peers keep their data, logs and the party key', '.party')
    .option('--verbose', "also print every peer's log lines here")
    .action(async (opts: { peers: string; basePort: string; data: string; verbose?: boolean }) => {
      const n = Number(opts.peers)
      const base = Number(opts.basePort)
      if (!Number.isInteger(n) || n < 1 || n > MAX_LOCAL_PEERS) throw new HousePartyError('ERR_INVALID_ARGUMENT', `--peers must be 1..${MAX_LOCAL_PEERS}`)
      if (!Number.isInteger(base) || base < 1 || base + 80 + n > 65535) throw new HousePartyError('ERR_INVALID_ARGUMENT', '--base-port out of range')
      const party = new LocalParty({ dir: opts.data, basePort: base, ...(opts.verbose ? { echo: process.stderr } : {}) })
      await party.prepare()
      let stopping = false
      const stop = async (): Promise<void> => {
        if (stopping) return
        stopping = true
        process.stdout.write('\nstopping the party (each peer leaves gracefully)...\n')
        await party.stopAll()
        process.exit(0)
      }
      process.on('SIGINT', () => void stop())
      process.on('SIGTERM', () => void stop())
      for (let i = 0; i < n; i++) await party.start(i)
      const deadline = Date.now() + 60_000
      let seen = 0
      while (Date.now() < deadline && !stopping) {
        const counts = await Promise.all(
          party.peers.map((p) =>
            getJson<GuestsReply>(p.api, '/guests')
              .then((g) => g.guests.length)
              .catch(() => 0),
          ),
        )
        seen = Math.min(...counts)
        if (seen === n) break
        for (const p of party.peers) if (!party.isRunning(p.index)) throw new HousePartyError('ERR_JOIN_FAILED', `peer ${p.index} exited; see ${p.logFile}`)
        await new Promise((r) => setTimeout(r, 200))
      }
      if (seen !== n) throw new HousePartyError('ERR_JOIN_FAILED', `only ${seen} of ${n} peers joined within 60 s; logs are in ${opts.data}`)
      const view = await getJson<{ guests: { id: string; address: string }[]; epoch: number }>(party.peers[0]?.api ?? '', '/guests')
      const rows = party.peers.map((p) => {
        const g = view.guests.find((x) => x.address.endsWith(`:${p.port}`))
        return [String(p.index), g?.id ?? '?', `127.0.0.1:${p.port}`, `http://${p.api}`, p.logFile]
      })
      process.stdout.write(`House Party is on: ${n} guests, epoch ${view.epoch}. Key: ${party.keyFile}\n`)
      process.stdout.write(`${table(['PEER', 'ID', 'UDP/TCP', 'API', 'LOG'], rows)}\n`)
      process.stdout.write(`\nTry: houseparty guests --peer ${party.peers[0]?.api}    (Ctrl-C stops the party)\n`)
    })
}
