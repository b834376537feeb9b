import type { Command } from 'commander'
import { DEFAULT_PEER, getJson, table } from '../client.ts'

interface GuestsReply {
  self: string | null
  status: string
  epoch: number
  guests: { id: string; address: string; apiPort: number; since: number; self: boolean }[]
}

export function registerGuestsCommand(program: Command): void {
  program
    .command('guests')
    .description('print the guest list as one peer sees it')
    .option('--peer <host:port>', 'API address of any peer [env HOUSEPARTY_PEER]', DEFAULT_PEER)
    .option('--json', 'print the raw JSON')
    .action(async (opts: { peer: string; json?: boolean }) => {
      const reply = await getJson<GuestsReply>(opts.peer, '/guests')
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(reply, null, 2)}\n`)
        return
      }
      process.stdout.write(`epoch ${reply.epoch}, ${reply.guests.length} guests (asked ${opts.peer}, ${reply.status})\n`)
      const rows = reply.guests.map((g) => {
        const host = g.address.replace(/:\d+$/, '')
        return [g.self ? `${g.id} *` : g.id, g.address, `${host}:${g.apiPort}`, String(g.since)]
      })
      process.stdout.write(`${table(['ID', 'ADDRESS', 'API', 'SINCE EPOCH'], rows)}\n`)
    })
}
