import { existsSync } from 'node:fs'
import { basename } from 'node:path'
import { createInterface } from 'node:readline'
import type { Command } from 'commander'
import { filePath, type PartyApi, table } from '../client.ts'
import { apiFor } from '../output.ts'
import { localKind, userPath } from '../paths.ts'
import { formatBytes } from '../progress.ts'
import { type TargetOptions, withTarget } from '../target.ts'
import { getFile, listFiles, putFile } from '../transfer.ts'
import { guests, peerContents, renderContents } from './guests.ts'

/**
 * `houseparty ui`: an interactive command-line UI. Numbered menus on
 * stdin/stdout, so it works in any terminal and can be driven by a script.
 */
export function registerUiCommand(program: Command): void {
  withTarget(program.command('ui'))
    .description('interactive: browse guests and files; get, put and remove files')
    .action(async (opts: TargetOptions) => {
      const api = await apiFor(opts)
      const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true })
      try {
        await runUi(rl[Symbol.asyncIterator](), api)
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

/** Asks before replacing something; anything but y/yes keeps it. */
async function confirm(lines: AsyncIterator<string>, question: string): Promise<boolean> {
  return /^y(es)?$/i.test((await ask(lines, `${question} [y/N]: `)) ?? '')
}

async function pickFile(rl: AsyncIterator<string>, api: PartyApi): Promise<{ name: string; size: number } | undefined> {
  const listing = await listFiles(api)
  listing.files.forEach((f, i) => {
    say(`  ${i + 1}) ${f.name} (${formatBytes(f.size)}, ${f.health})`)
  })
  const file = listing.files[Number(await ask(rl, 'file #: ')) - 1]
  if (!file) say('no such file')
  return file
}

async function runUi(rl: AsyncIterator<string>, api: PartyApi): Promise<void> {
  for (;;) {
    const { guests: list, epoch } = await guests(api)
    say(`\nHouse Party via ${api.target.label}: ${list.length} guests, epoch ${epoch}`)
    say('  1) list guests   2) list files   3) what a guest holds   4) get a file   5) put a file   6) remove a file   q) quit')
    const choice = await ask(rl, '> ')
    try {
      if (choice === undefined || choice === 'q') return
      if (choice === '1') {
        say(
          table(
            ['#', 'ID', 'ADDRESS', 'API'],
            list.map((g, i) => [String(i + 1), g.self ? `${g.id} *` : g.id, g.address, `${g.address.replace(/:\d+$/, '')}:${g.apiPort}`]),
          ),
        )
      } else if (choice === '2') {
        const listing = await listFiles(api)
        say(`${listing.files.length} files (${listing.answered} of ${listing.guests} guests answered)`)
        say(
          table(
            ['NAME', 'SIZE', 'HEALTH', 'HOLDERS'],
            listing.files.map((f) => [f.name, formatBytes(f.size), f.health, `${f.holders.filter((h) => h.live).length}/${f.k + f.m}`]),
          ),
        )
      } else if (choice === '3') {
        list.forEach((g, i) => {
          say(`  ${i + 1}) ${g.id} ${g.address}`)
        })
        const guest = list[Number(await ask(rl, 'guest #: ')) - 1]
        if (!guest) say('no such guest')
        else say(renderContents(await peerContents(api, guest.id)))
      } else if (choice === '4') {
        const file = await pickFile(rl, api)
        if (file) {
          const suggested = file.name.split('/').at(-1) ?? 'file'
          const out = userPath((await ask(rl, `save as [${suggested}]: `)) || suggested)
          if (existsSync(out) && !(await confirm(rl, `${out} exists; overwrite it?`))) say('kept the local file')
          else {
            const r = await getFile(api, file.name, out)
            say(`saved ${file.name} to ${out}: ${formatBytes(r.size)}, sha256 ${r.hash} verified`)
          }
        }
      } else if (choice === '5') {
        const path = userPath((await ask(rl, 'local file: ')) ?? '')
        if ((await localKind(path)) === 'dir') say(`${path} is a directory; use \`houseparty put -r\``)
        else {
          const name = (await ask(rl, `store as [${basename(path)}]: `)) || basename(path)
          const exists = (await api.request(filePath(name), { method: 'HEAD' })).ok
          if (exists && !(await confirm(rl, `the party has ${name}; store a new version over it?`))) say('kept the party file')
          else {
            const r = await putFile(api, path, name)
            say(`stored ${r.name}: ${formatBytes(r.size)}, sha256 ${r.hash}, version ${r.version}`)
          }
        }
      } else if (choice === '6') {
        const file = await pickFile(rl, api)
        if (file && (await confirm(rl, `remove ${file.name} and every fragment of it?`))) {
          await api.json(filePath(file.name), { method: 'DELETE' })
          say(`removed ${file.name}`)
        }
      } else say(`unknown choice ${JSON.stringify(choice)}`)
    } catch (err) {
      say(`error: ${(err as Error).message}`)
    }
  }
}
