import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { newAccessKeyId } from '../peer/keys/index.ts'
import { HousePartyError } from '../shared/errors.ts'
import { logOutputTo } from '../shared/process-log.ts'
import { missingPeerFlags } from '../shared/runtime.ts'
import { PartyApi } from './client.ts'
import { newPartyKey } from './commands/keygen.ts'
import { type LocalSecurity, localSecurity } from './local-security.ts'

export interface LocalPeer {
  index: number
  port: number
  apiPort: number
  api: string
  /** The peer's S3 endpoint port. */
  s3Port: number
  dataDir: string
  logFile: string
  process: ChildProcess | undefined
}

export interface LocalPartyOptions {
  dir: string
  basePort: number
  host?: string
  /** Extra flags for every peer (e.g. faster timings in tests). */
  peerArgs?: string[]
  env?: NodeJS.ProcessEnv
  /** The CLI entry to run (defaults to the running one, .ts or .js). */
  cli?: string
  /** Pipe peers' log lines here as well as to their log files. */
  echo?: NodeJS.WritableStream
  /** Where peer i pretends to run (--zone, --node), for trying placement by failure domain on one machine. */
  domainsOf?: (index: number) => PeerDomains
  /** Serve the APIs over HTTPS (a CA made into `dir`) and require an API token, as `houseparty party` does unless told --plain-http. */
  secure?: boolean
}

export interface PeerDomains {
  zone?: string | undefined
  node?: string | undefined
}

/**
 * The Node flags a peer inherits from this process: runtime switches only. Not
 * --test*, and never -e/-p (a parent run as `node -e CODE` would have every
 * peer run CODE instead of the CLI).
 */
function inheritedNodeFlags(): string[] {
  return process.execArgv.filter((a) =>
    /^--(no-)?(experimental-[a-z-]+|warnings|enable-source-maps|max-old-space-size=\d+|initial-heap-size=\d+|max-semi-space-size=\d+)(=.*)?$/.test(a),
  )
}

/** The flags each peer runs with: inherited ones first, then the peer's own V8 flags this process did not set. */
function peerNodeFlags(): string[] {
  const inherited = inheritedNodeFlags()
  return [...inherited, ...missingPeerFlags(inherited)]
}

function domainFlags(d: PeerDomains | undefined): string[] {
  return [...(d?.zone ? ['--zone', d.zone] : []), ...(d?.node ? ['--node', d.node] : [])]
}

/** The port scheme of a local party: peer i listens on base+i, its API on base+80+i, its S3 API on base+160+i. */
export const API_PORT_OFFSET = 80
export const S3_PORT_OFFSET = 160
export const MAX_LOCAL_PEERS = 64

/** The S3 admin key of a local party, made once and kept in its dir (s3-admin.json). */
export interface S3AdminKey {
  accessKeyId: string
  secretAccessKey: string
}

/**
 * Runs peers as child processes on one machine: `houseparty party` and the
 * multi-process tests both use it. Peer 0 founds the party; the others join
 * through it (or through any peer given).
 */
export class LocalParty {
  readonly peers: LocalPeer[] = []
  readonly #o: LocalPartyOptions
  readonly #host: string
  #keyFile = ''
  #s3Key: S3AdminKey | undefined
  #security: LocalSecurity | undefined
  #caPem = ''

  constructor(options: LocalPartyOptions) {
    this.#o = options
    this.#host = options.host ?? '127.0.0.1'
  }

  get keyFile(): string {
    return this.#keyFile
  }

  /** The S3 admin key every peer is given (made by prepare()). */
  get s3Key(): S3AdminKey {
    if (!this.#s3Key) throw new HousePartyError('ERR_INVALID_ARGUMENT', 'the local party is not prepared yet')
    return this.#s3Key
  }

  get s3KeyFile(): string {
    return join(resolve(this.#o.dir), 's3-admin.json')
  }

  /** Makes (or reuses) the party key in dir/party.key and the S3 admin key in dir/s3-admin.json. */
  async prepare(): Promise<void> {
    await mkdir(this.#o.dir, { recursive: true })
    this.#keyFile = join(resolve(this.#o.dir), 'party.key')
    if (!existsSync(this.#keyFile)) await writeFile(this.#keyFile, `${newPartyKey()}\n`, { mode: 0o600 })
    if (!existsSync(this.s3KeyFile)) {
      const key: S3AdminKey = { accessKeyId: newAccessKeyId(), secretAccessKey: randomBytes(30).toString('base64url') }
      await writeFile(this.s3KeyFile, `${JSON.stringify(key, null, 2)}\n`, { mode: 0o600 })
    }
    this.#s3Key = JSON.parse(await readFile(this.s3KeyFile, 'utf8')) as S3AdminKey
    if (this.#o.secure) {
      this.#security = await localSecurity(resolve(this.#o.dir))
      this.#caPem = await readFile(this.#security.caFile, 'utf8')
    }
  }

  /** The HTTPS certificate and API token, for a secure party (after prepare()). */
  get security(): LocalSecurity | undefined {
    return this.#security
  }

  /** Where peer `index`'s HTTP API is, with its scheme. */
  apiUrl(index: number): string {
    return `${this.#security ? 'https' : 'http'}://${this.peer(index).api}`
  }

  /** A client of peer `index`'s API, trusting the party's CA and sending its token. */
  api(index: number): PartyApi {
    const s = this.#security
    return new PartyApi({ base: this.apiUrl(index), label: this.peer(index).api, token: s?.token, ...(s ? { ca: this.#caPem } : {}) })
  }

  peer(index: number): LocalPeer {
    let p = this.peers[index]
    if (!p) {
      if (index >= MAX_LOCAL_PEERS) throw new HousePartyError('ERR_INVALID_ARGUMENT', `a local party holds at most ${MAX_LOCAL_PEERS} peers`)
      const port = this.#o.basePort + index
      const apiPort = this.#o.basePort + API_PORT_OFFSET + index
      const s3Port = this.#o.basePort + S3_PORT_OFFSET + index
      const dataDir = join(resolve(this.#o.dir), `peer-${index}`)
      p = {
        index,
        port,
        apiPort,
        api: `${this.#host}:${apiPort}`,
        s3Port,
        dataDir,
        logFile: join(resolve(this.#o.dir), `peer-${index}.log`),
        process: undefined,
      }
      this.peers[index] = p
    }
    return p
  }

  /** Starts peer `index`; `join` lists peer indexes to use as doors (none: found a party). */
  async start(index: number, join: number[] = index === 0 ? [] : [0], extraArgs: string[] = []): Promise<LocalPeer> {
    if (!this.#keyFile) await this.prepare()
    const p = this.peer(index)
    if (p.process && p.process.exitCode === null && p.process.signalCode === null) {
      throw new HousePartyError('ERR_INVALID_ARGUMENT', `peer ${index} is already running`)
    }
    await mkdir(p.dataDir, { recursive: true })
    const cli = this.#o.cli ?? process.argv[1] ?? ''
    const doors = join.map((j) => `${this.#host}:${this.peer(j).port}`)
    const args = [
      ...peerNodeFlags(),
      cli,
      'peer',
      '--host',
      this.#host,
      '--port',
      String(p.port),
      '--api-port',
      String(p.apiPort),
      '--s3-port',
      String(p.s3Port),
      '--data',
      p.dataDir,
      '--key-file',
      this.#keyFile,
      '--exit-with-parent',
      'true',
      ...(doors.length > 0 ? ['--join', doors.join(',')] : []),
      ...domainFlags(this.#o.domainsOf?.(index)),
      ...(this.#security ? ['--tls-cert-file', this.#security.certFile, '--tls-key-file', this.#security.keyFile] : []),
      ...(this.#o.peerArgs ?? []),
      ...extraArgs,
    ]
    const env = { ...process.env, ...this.#o.env }
    for (const k of Object.keys(env)) if (k.startsWith('HOUSEPARTY_') && !(this.#o.env && k in this.#o.env)) delete env[k]
    // The admin key by environment, not flags: a secret on a command line is visible to every user of the machine.
    env.HOUSEPARTY_S3_ACCESS_KEY ??= this.s3Key.accessKeyId
    env.HOUSEPARTY_S3_SECRET_KEY ??= this.s3Key.secretAccessKey
    if (this.#security) env.HOUSEPARTY_API_TOKEN ??= this.#security.token
    // Its own process group: the terminal's Ctrl-C reaches the launcher alone, which then asks each peer to leave
    // (once); --exit-with-parent makes a peer leave by itself if the launcher dies without asking.
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    logOutputTo(child, p.logFile)
    if (this.#o.echo) {
      child.stdout?.pipe(this.#o.echo, { end: false })
      child.stderr?.pipe(this.#o.echo, { end: false })
    }
    p.process = child
    return p
  }

  isRunning(index: number): boolean {
    const c = this.peers[index]?.process
    return !!c && c.exitCode === null && c.signalCode === null
  }

  signal(index: number, signal: NodeJS.Signals): void {
    this.peers[index]?.process?.kill(signal)
  }

  /** Waits for peer `index` to exit (after a signal). */
  async exited(index: number, timeoutMs = 10_000): Promise<number | string | null> {
    const c = this.peers[index]?.process
    if (!c) return null
    if (c.exitCode !== null || c.signalCode !== null) return c.exitCode ?? c.signalCode
    await Promise.race([once(c, 'exit'), new Promise((r) => setTimeout(r, timeoutMs).unref())])
    return c.exitCode ?? c.signalCode
  }

  /** SIGTERM every running peer (each leaves gracefully), then SIGKILL stragglers. */
  async stopAll(graceMs = 8_000): Promise<void> {
    const running = this.peers.filter((p) => p.process && p.process.exitCode === null && p.process.signalCode === null)
    for (const p of running) {
      p.process?.kill('SIGCONT') // a frozen peer cannot handle SIGTERM
      p.process?.kill('SIGTERM')
    }
    await Promise.all(running.map((p) => this.exited(p.index, graceMs)))
    for (const p of running) if (p.process?.exitCode === null && p.process.signalCode === null) p.process.kill('SIGKILL')
  }

  async readLog(index: number): Promise<string> {
    return readFile(this.peer(index).logFile, 'utf8').catch(() => '')
  }
}
