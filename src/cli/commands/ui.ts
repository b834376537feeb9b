import { createInterface } from 'node:readline'
import type { Command } from 'commander'
import { DEFAULT_PEER, getJson, table } from '../client.ts'
import { formatBytes } from '../progress.ts'
import { getFile, listFiles, peerContents, renderContents, renderListing } from './files.ts'

interface Common {
  peer: string
  token?: string
}

interface GuestRow {
  id: string
  address: string
  apiPort: number
  self: boolean
}

/**
 * `houseparty ui`: the seed's interactive command-line UI. Numbered menus on
 * stdin/stdout, so it works in any terminal and can be driven by a script.
 */
export function registerUiCommand(program: Command): void {
  program
    .command('ui')
    .description('interactive: browse the guests, what each holds, and retrieve files')
    .option('--peer <host:port>', 'API address of any peer [env HOUSEPARTY_PEER]', DEFAULT_PEER)
    .option('--token <token>', 'API token [env HOUSEPARTY_API_TOKEN]', process.env.HOUSEPARTY_API_TOKEN)
    .action(async (opts: Common) => {
      const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true })
      try {
        await runUi(rl[Symbol.asyncIterator](), opts)
      } finally {
        rl.close()
      }
    })
}

/**
 * Prompts and reads the next line. Lines come from the interface's async
 * iterator, which buffers them: piped input that arrives all at once is not
 * lost between prompts (rl.question would drop it).
 */
async function ask(lines: AsyncIterator<string>, prompt: string): Promise<string | undefined> {
  process.stdout.write(prompt)
  const next = await lines.next()
  return next.done ? undefined : next.value.trim()
}

const say = (text: string): void => {
  process.stdout.write(`${text}\n`)
}

async function runUi(rl: AsyncIterator<string>, opts: Common): Promise<void> {
  for (;;) {
    const { guests, epoch } = await getJson<{ guests: GuestRow[]; epoch: number }>(opts.peer, '/guests')
    say(`\nHouse Party via ${opts.peer}: ${guests.length} guests, epoch ${epoch}`)
    say('  1) list guests   2) list files   3) what a guest holds   4) get a file   q) quit')
    const choice = await ask(rl, '> ')
    try {
      if (choice === undefined || choice === 'q') return
      if (choice === '1') {
        say(
          table(
            ['#', 'ID', 'ADDRESS', 'API'],
            guests.map((g, i) => [String(i + 1), g.self ? `${g.id} *` : g.id, g.address, `${g.address.replace(/:\d+$/, '')}:${g.apiPort}`]),
          ),
        )
      } else if (choice === '2') {
        say(renderListing(await listFiles(opts)))
      } else if (choice === '3') {
        guests.forEach((g, i) => {
          say(`  ${i + 1}) ${g.id} ${g.address}`)
        })
        const pick = Number(await ask(rl, 'guest #: '))
        const guest = guests[pick - 1]
        if (!guest) say('no such guest')
        else say(renderContents(await peerContents(opts, guest.id)))
      } else if (choice === '4') {
        const listing = await listFiles(opts)
        listing.files.forEach((f, i) => {
          say(`  ${i + 1}) ${f.name} (${formatBytes(f.size)}, ${f.health})`)
        })
        const pick = Number(await ask(rl, 'file #: '))
        const file = listing.files[pick - 1]
        if (!file) say('no such file')
        else {
          const suggested = file.name.split('/').at(-1) ?? 'file'
          const out = (await ask(rl, `save as [${suggested}]: `)) || suggested
          const r = await getFile(opts, file.name, out)
          say(`saved ${file.name} to ${out}: ${formatBytes(r.size)}, sha256 ${r.hash} verified`)
        }
      } else say(`unknown choice ${JSON.stringify(choice)}`)
    } catch (err) {
      say(`error: ${(err as Error).message}`)
    }
  }
}
