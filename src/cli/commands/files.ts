import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { rename, stat, unlink } from 'node:fs/promises'
import { basename } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Command } from 'commander'
import { HousePartyError } from '../../shared/errors.ts'
import { apiBase, authHeaders, DEFAULT_PEER, filePath, getJson, remoteError, table } from '../client.ts'
import { formatBytes, progressMeter } from '../progress.ts'

interface Common {
  peer: string
  token?: string
}

export interface FileListing {
  files: {
    name: string
    version: string
    size: number
    hash: string
    k: number
    m: number
    health: string
    holders: { index: number; guest: string; live: boolean }[]
  }[]
  guests: number
  answered: number
}

function common(cmd: Command): Command {
  return cmd
    .option('--peer <host:port>', 'API address of any peer [env HOUSEPARTY_PEER]', DEFAULT_PEER)
    .option('--token <token>', 'API token, when the party requires one [env HOUSEPARTY_API_TOKEN]', process.env.HOUSEPARTY_API_TOKEN)
}

/** Streams a local file to the party; returns what the party stored, checked against our own hash of the bytes sent. */
export async function putFile(opts: Common, path: string, name: string, quiet = false): Promise<{ name: string; size: number; hash: string; version: string }> {
  const size = (await stat(path)).size
  const hash = createHash('sha256')
  const { meter, done } = progressMeter(`put ${name}`, size, !quiet && process.stderr.isTTY === true)
  const hasher = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk)
      cb(null, chunk)
    },
  })
  const body = createReadStream(path).pipe(hasher).pipe(meter)
  let res: Response
  try {
    res = await fetch(`${apiBase(opts.peer)}${filePath(name)}`, {
      method: 'PUT',
      body: Readable.toWeb(body) as ReadableStream,
      duplex: 'half',
      headers: { 'content-length': String(size), 'content-type': 'application/octet-stream', ...authHeaders(opts.token) },
    } as RequestInit)
  } finally {
    done()
  }
  const reply = (await res.json()) as { name: string; size: number; hash: string; version: string }
  if (!res.ok) throw remoteError(res.status, reply)
  const ours = hash.digest('hex')
  if (reply.hash !== ours) throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `party stored sha256 ${reply.hash}, we sent ${ours}`)
  return reply
}

/** Streams a file from the party to `out` ("-" for stdout), verifying the bytes against the ETag. */
export async function getFile(opts: Common, name: string, out: string, quiet = false): Promise<{ size: number; hash: string }> {
  const res = await fetch(`${apiBase(opts.peer)}${filePath(name)}`, { headers: authHeaders(opts.token) })
  if (!res.ok || !res.body) throw remoteError(res.status, await res.json().catch(() => undefined))
  const total = Number(res.headers.get('content-length') ?? Number.NaN)
  const etag = (res.headers.get('etag') ?? '').replaceAll('"', '')
  const hash = createHash('sha256')
  let size = 0
  const hasher = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk)
      size += chunk.length
      cb(null, chunk)
    },
  })
  const { meter, done } = progressMeter(`get ${name}`, Number.isFinite(total) ? total : undefined, !quiet && out !== '-' && process.stderr.isTTY === true)
  const tmp = out === '-' ? undefined : `${out}.houseparty-partial`
  try {
    const sink = tmp ? createWriteStream(tmp) : process.stdout
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), hasher, meter, sink, { end: tmp !== undefined })
  } catch (err) {
    if (tmp) await unlink(tmp).catch(() => undefined)
    throw new HousePartyError('ERR_TRANSFER_FAILED', `download of ${JSON.stringify(name)} broke off after ${size} bytes: ${(err as Error).message}`)
  } finally {
    done()
  }
  const got = hash.digest('hex')
  if ((Number.isFinite(total) && size !== total) || got !== etag) {
    if (tmp) await unlink(tmp).catch(() => undefined)
    throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `got ${size} bytes with sha256 ${got}; the party announced ${total} bytes, ${etag}`)
  }
  if (tmp) await rename(tmp, out)
  return { size, hash: got }
}

export function listFiles(opts: Common): Promise<FileListing> {
  return getJson<FileListing>(opts.peer, '/files', { headers: authHeaders(opts.token) })
}

export function renderListing(listing: FileListing): string {
  const rows = listing.files.map((f) => [
    f.name,
    formatBytes(f.size),
    f.health,
    `${f.holders.filter((h) => h.live).length}/${f.k + f.m}`,
    `${f.k}+${f.m}`,
    f.hash.slice(0, 12),
    f.version,
  ])
  const header = `${listing.files.length} files (${listing.answered} of ${listing.guests} guests answered)`
  return `${header}\n${table(['NAME', 'SIZE', 'HEALTH', 'HOLDERS', 'CODE', 'SHA256', 'VERSION'], rows)}`
}

/** Resolves a guest id or a unique prefix of one. */
export async function resolveGuest(opts: Common, idOrPrefix: string): Promise<string> {
  const { guests } = await getJson<{ guests: { id: string }[] }>(opts.peer, '/guests')
  const matches = guests.filter((g) => g.id.startsWith(idOrPrefix.toLowerCase()))
  if (matches.length === 1) return (matches[0] as { id: string }).id
  throw new HousePartyError('ERR_GUEST_NOT_FOUND', matches.length === 0 ? `no guest ${idOrPrefix}` : `${idOrPrefix} matches ${matches.length} guests`)
}

export interface FragmentsReply {
  guest: string
  bytes: number
  fragments: { name: string; version: string; index: number; size: number; bytes: number; coding: { k: number; m: number } }[]
}

export async function peerContents(opts: Common, id: string): Promise<FragmentsReply> {
  const guest = await resolveGuest(opts, id)
  return getJson<FragmentsReply>(opts.peer, `/guests/${guest}/fragments`, { headers: authHeaders(opts.token) })
}

export function renderContents(reply: FragmentsReply): string {
  const rows = reply.fragments
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.index - b.index))
    .map((f) => [f.name, String(f.index), f.index < f.coding.k ? 'data' : 'parity', formatBytes(f.bytes), formatBytes(f.size), f.version])
  return `guest ${reply.guest}: ${reply.fragments.length} fragments, ${formatBytes(reply.bytes)}\n${table(['NAME', 'INDEX', 'KIND', 'FRAGMENT', 'FILE SIZE', 'VERSION'], rows)}`
}

export function registerFileCommands(program: Command): void {
  common(program.command('put'))
    .description('store local files in the party')
    .argument('<files...>', 'files to put')
    .option('--name <name>', 'name to store the file under (one file only; default: its base name)')
    .action(async (files: string[], opts: Common & { name?: string }) => {
      if (opts.name && files.length > 1) throw new HousePartyError('ERR_INVALID_ARGUMENT', '--name works with one file only')
      for (const path of files) {
        const r = await putFile(opts, path, opts.name ?? basename(path))
        process.stdout.write(`${r.name}\t${r.size}\t${r.hash}\t${r.version}\n`)
      }
    })

  common(program.command('get'))
    .description('fetch a file from the party (verified against its sha256)')
    .argument('<name>', 'file name')
    .option('-o, --output <path>', 'where to write it; "-" for stdout (default: the last part of the name)')
    .action(async (name: string, opts: Common & { output?: string }) => {
      const out = opts.output ?? name.split('/').at(-1) ?? name
      const r = await getFile(opts, name, out)
      if (out !== '-') process.stderr.write(`${name} -> ${out} (${formatBytes(r.size)}, sha256 ${r.hash})\n`)
    })

  common(program.command('ls'))
    .description('list every file of the party with its health')
    .option('--json', 'print the raw JSON')
    .action(async (opts: Common & { json?: boolean }) => {
      const listing = await listFiles(opts)
      process.stdout.write(opts.json ? `${JSON.stringify(listing, null, 2)}\n` : `${renderListing(listing)}\n`)
    })

  common(program.command('rm'))
    .description('remove a file: every fragment and tracker record')
    .argument('<name>', 'file name')
    .action(async (name: string, opts: Common) => {
      await getJson(opts.peer, filePath(name), { method: 'DELETE', headers: authHeaders(opts.token) })
      process.stderr.write(`removed ${name}\n`)
    })

  common(program.command('peer-contents'))
    .description('list the fragments one guest holds')
    .argument('<id>', 'guest id (or a unique prefix)')
    .option('--json', 'print the raw JSON')
    .action(async (id: string, opts: Common & { json?: boolean }) => {
      const reply = await peerContents(opts, id)
      process.stdout.write(opts.json ? `${JSON.stringify(reply, null, 2)}\n` : `${renderContents(reply)}\n`)
    })
}
