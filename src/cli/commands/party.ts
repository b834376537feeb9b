import { join } from 'node:path'
import type { Command } from 'commander'
import { lockHolder } from '../../peer/identity/index.ts'
import { HousePartyError } from '../../shared/errors.ts'
import { loadConfig, saveConfig } from '../aliases.ts'
import { table } from '../client.ts'
import { LocalParty, type LocalPeer, MAX_LOCAL_PEERS, S3_PORT_OFFSET } from '../local-party.ts'
import { PartyWatch } from '../party-watch.ts'
import { guests } from './guests.ts'

/** The last lines of a peer's log that say why it stopped (its fatal line, else the tail). */
async function whyExited(party: LocalParty, p: LocalPeer): Promise<string> {
  const lines = (await party.readLog(p.index)).trim().split('\n')
  const fatal = lines.filter((l) => /ERR_[A-Z_]+|"level":(50|60)/.test(l)).at(-1)
  const line = fatal ?? lines.at(-1) ?? ''
  const msg = /"msg":"([^"]*)"/.exec(line)?.[1]
  return msg ?? line.slice(0, 300)
}

/** A comma-separated list of names (undefined: none given). */
function names(list: string | undefined): string[] {
  return (list ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
}

const pick = (list: readonly string[], i: number): string | undefined => (list.length > 0 ? list[i % list.length] : undefined)

/** With zones: how to lose the first one (and get it back), and see every file still read. */
function zoneLoss(party: LocalParty, zones: readonly string[], cli: string, flag: string): string[] {
  const zone = zones[0]
  if (!zone) return []
  const pids = party.peers.filter((p) => pick(zones, p.index) === zone).map((p) => p.process?.pid ?? '?')
  return [
    `  kill -STOP ${pids.join(' ')}${' '.repeat(Math.max(1, 19 - String(pids.join(' ')).length))}zone ${zone} lost (kill -CONT ${pids.join(' ')} brings it back):`,
    `  ${cli} verify --all${flag}            every file still reads; ${cli} health${flag} says what losing a zone costs`,
  ]
}

/**
 * How the printed commands reach the party: a secure party is saved as a CLI
 * alias (its URL, token and CA), the default one unless another is; a plain
 * one off the default ports is named by address.
 */
async function cliTarget(party: LocalParty, base: number): Promise<{ alias: string; flag: string }> {
  const alias = base === DEFAULT_BASE_PORT ? 'local' : `local-${base}`
  if (!party.security) return { alias, flag: base === DEFAULT_BASE_PORT ? '' : ` --peer ${party.peer(0).api}` }
  const config = await loadConfig()
  config.aliases[alias] = { url: party.apiUrl(0), token: party.security.token, caFile: party.security.caFile }
  config.default ??= alias
  await saveConfig(config)
  return { alias, flag: config.default === alias ? '' : ` --peer ${alias}` }
}

const DEFAULT_BASE_PORT = 7400

/** How this CLI is run, so the commands printed work as printed: `npm start` in a checkout has no `houseparty` on PATH. */
function cliCommand(): string {
  return process.env.npm_lifecycle_event ? 'npm run houseparty --' : 'houseparty'
}

export function registerPartyCommand(program: Command): void {
  program
    .command('party')
    .description('run a local party: N peer processes on 127.0.0.1, restarted if they crash, leaving together on Ctrl-C')
    .option('--peers <n>', 'how many peers', '5')
    .option('--base-port <port>', 'peer i uses UDP/TCP port base+i, API port base+80+i and S3 port base+160+i', '7400')
    .option('--data <dir>', 'where peers keep their data, logs and the party key', '.party')
    .option('--verbose', "also print every peer's log lines here")
    .option('--zones <list>', 'comma-separated zone names: peer i runs "in" zone i mod the count (to try placement by failure domain)')
    .option('--nodes <list>', 'comma-separated node names: peer i runs "on" node i mod the count')
    .option('--plain-http', 'serve the HTTP and S3 APIs in clear, without a token (default: HTTPS with a CA made in --data, and an API token)')
    .action(async (opts: { peers: string; basePort: string; data: string; verbose?: boolean; zones?: string; nodes?: string; plainHttp?: boolean }) => {
      const n = Number(opts.peers)
      const base = Number(opts.basePort)
      if (!Number.isInteger(n) || n < 1 || n > MAX_LOCAL_PEERS) throw new HousePartyError('ERR_INVALID_ARGUMENT', `--peers must be 1..${MAX_LOCAL_PEERS}`)
      if (!Number.isInteger(base) || base < 1 || base + S3_PORT_OFFSET + n > 65535)
        throw new HousePartyError('ERR_INVALID_ARGUMENT', '--base-port out of range')
      const zones = names(opts.zones)
      const nodes = names(opts.nodes)
      const party = new LocalParty({
        dir: opts.data,
        basePort: base,
        // The whole party stops together and the next start resumes it on the same data dirs: a stop is a
        // restart, not a leave (handing data to peers that are all leaving too would only shuffle it).
        peerArgs: ['--on-stop', 'restart'],
        ...(opts.verbose ? { echo: process.stderr } : {}),
        domainsOf: (i) => ({ zone: pick(zones, i), node: pick(nodes, i) }),
        secure: !opts.plainHttp,
      })
      await party.prepare()
      let watch: PartyWatch | undefined
      let stopping = false
      const stop = async (): Promise<void> => {
        if (stopping) return
        stopping = true
        watch?.stop()
        process.stdout.write('\nstopping the party: each peer leaves gracefully...\n')
        await party.stopAll()
        process.exit(0)
      }
      process.on('SIGINT', () => void stop())
      process.on('SIGTERM', () => void stop())
      for (let i = 0; i < n; i++) await party.start(i)

      // Up means: our own process runs, holds its data dir (a second launcher's peers find it locked and exit),
      // and lists every guest.
      const deadline = Date.now() + 60_000
      let seen = 0
      while (!stopping) {
        for (const p of party.peers) {
          if (!party.isRunning(p.index)) {
            await party.stopAll()
            throw new HousePartyError('ERR_JOIN_FAILED', `peer ${p.index} exited while starting: ${await whyExited(party, p)} (log: ${p.logFile})`)
          }
        }
        const ours = await Promise.all(party.peers.map(async (p) => (await lockHolder(p.dataDir).catch(() => undefined)) === p.process?.pid))
        const counts = await Promise.all(
          party.peers.map((p) =>
            guests(party.api(p.index)).then(
              (g) => g.guests.length,
              () => 0,
            ),
          ),
        )
        seen = ours.every(Boolean) ? Math.min(...counts) : 0
        if (seen === n) break
        if (Date.now() > deadline) {
          await party.stopAll()
          throw new HousePartyError('ERR_JOIN_FAILED', `only ${seen} of ${n} peers joined within 60 s; logs are in ${opts.data}`)
        }
        await new Promise((r) => setTimeout(r, 200))
      }
      const view = await guests(party.api(0))
      const rows = party.peers.map((p) => {
        const g = view.guests.find((x) => x.address.endsWith(`:${p.port}`))
        const where = [pick(zones, p.index), pick(nodes, p.index)].filter(Boolean).join('/')
        return [
          String(p.index),
          g?.id ?? '?',
          String(p.process?.pid ?? '?'),
          where || '-',
          `127.0.0.1:${p.port}`,
          party.apiUrl(p.index),
          `${party.security ? 'https' : 'http'}://127.0.0.1:${p.s3Port}`,
          p.logFile,
        ]
      })
      const peer = await cliTarget(party, base)
      const cli = cliCommand()
      process.stdout.write(`House Party is on: ${n} guests, epoch ${view.epoch}. Key: ${party.keyFile}\n`)
      if (party.security)
        process.stdout.write(
          `APIs over HTTPS with the party's own CA (${party.security.caFile}) and an API token (${join(opts.data, 'api-token')}), saved as CLI alias ${peer.alias}${peer.flag ? '' : ' (the default)'}; --plain-http serves them in clear.\n`,
        )
      process.stdout.write(`${table(['PEER', 'ID', 'PID', 'ZONE/NODE', 'UDP/TCP', 'API', 'S3', 'LOG'], rows)}\n\n`)
      const run = (command: string, what: string): string => `  ${`${cli} ${command}${peer.flag}`.padEnd(cli.length + peer.flag.length + 25)} ${what}`
      process.stdout.write(
        [
          'Try, from another terminal:',
          run('put ./some-file', 'store a file (-r for a directory)'),
          run('ls', 'list what the party holds'),
          run('get some-file -o copy', 'fetch it back, verified'),
          run('guests', 'the guest list'),
          `  kill -9 <pid of a peer>         this terminal shows the party notice, rebuild, and the peer come back`,
          ...zoneLoss(party, zones, cli, peer.flag),
          `S3, on any peer (region us-east-1; the admin key is kept in ${party.s3KeyFile}):`,
          `  export AWS_ACCESS_KEY_ID=${party.s3Key.accessKeyId} AWS_SECRET_ACCESS_KEY=${party.s3Key.secretAccessKey}`,
          `  aws --endpoint-url ${party.security ? 'https' : 'http'}://127.0.0.1:${(party.peers[0] as LocalPeer).s3Port}${party.security ? ` --ca-bundle ${party.security.caFile}` : ''} s3 mb s3://photos`,
          'Ctrl-C here: every peer leaves gracefully.',
          '',
          'events:',
        ].join('\n'),
      )
      process.stdout.write('\n')
      watch = new PartyWatch(party, (line) => process.stdout.write(`${new Date().toISOString().slice(11, 19)}  ${line}\n`))
      watch.start(view)
    })
}
