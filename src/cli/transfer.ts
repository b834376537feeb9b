import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, rename, stat, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { Readable, Transform, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'
import { HousePartyError } from '../shared/errors.ts'
import { filePath, type PartyApi, parseJson, remoteError, replyError } from './client.ts'
import { Progress } from './progress.ts'

/** One file as `GET /files` lists it. */
export interface ListedFile {
  name: string
  version: string
  size: number
  hash: string
  k: number
  m: number
  health: string
  holders: { index: number; guest: string; live: boolean }[]
}

export interface FileListing {
  files: ListedFile[]
  guests: number
  answered: number
}

/** One page of `GET /files`. */
interface FilePage extends FileListing {
  prefixes: string[]
  next?: string
}

/** Names per page the CLI asks for: one page costs each guest one ordered read of its index. */
const PAGE = 1000

export interface Stored {
  name: string
  size: number
  hash: string
  version: string
}

/**
 * Every file whose name starts with `prefix`, in name order, paged through
 * `GET /files` (each page continues from the last one's token). `guests` and
 * `answered` are the fewest any page reported.
 */
export async function listFiles(api: PartyApi, prefix = '', limit = PAGE): Promise<FileListing> {
  const listing: FileListing = { files: [], guests: 0, answered: Number.POSITIVE_INFINITY }
  let token: string | undefined
  do {
    const query = new URLSearchParams({ prefix, limit: String(limit) })
    if (token) query.set('token', token)
    const page = await api.json<FilePage>(`/files?${query}`)
    listing.files.push(...page.files)
    listing.guests = Math.max(listing.guests, page.guests)
    listing.answered = Math.min(listing.answered, page.answered)
    token = page.next
  } while (token)
  if (!Number.isFinite(listing.answered)) listing.answered = 0
  return listing
}

/** Every file under any of `prefixes` (each listed once). */
export async function listUnder(api: PartyApi, prefixes: readonly string[]): Promise<ListedFile[]> {
  const byName = new Map<string, ListedFile>()
  for (const prefix of new Set(prefixes)) for (const f of (await listFiles(api, prefix)).files) byName.set(f.name, f)
  return [...byName.values()]
}

/** The longest prefix all of `names` share: one listing covers them all. */
export function sharedPrefix(names: readonly string[]): string {
  if (names.length === 0) return ''
  let prefix = names[0] as string
  for (const name of names) while (!name.startsWith(prefix)) prefix = prefix.slice(0, -1)
  return prefix
}

/** The file named exactly `name` as the listing has it, if any (the first name in order under itself as a prefix). */
export async function listedFile(api: PartyApi, name: string): Promise<ListedFile | undefined> {
  const page = await api.json<FilePage>(`/files?${new URLSearchParams({ prefix: name, limit: '1' })}`)
  return page.files.find((f) => f.name === name)
}

const hashing = (hash: ReturnType<typeof createHash>, count?: (n: number) => void): Transform =>
  new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk)
      count?.(chunk.length)
      cb(null, chunk)
    },
  })

/** Streams a local file to the party as `name`; the party's hash of what it stored must match ours of what we sent. */
export async function putFile(api: PartyApi, path: string, name: string, progress?: Progress): Promise<Stored> {
  const s = await stat(path)
  if (s.isDirectory()) throw new HousePartyError('ERR_INVALID_ARGUMENT', `${path} is a directory; put it with --recursive`)
  const hash = createHash('sha256')
  const own = progress ? undefined : new Progress({ files: 1, bytes: s.size })
  const { meter, done } = (progress ?? (own as Progress)).file(`put ${name}`, s.size)
  const body = createReadStream(path).pipe(hashing(hash)).pipe(meter)
  let res: Response
  try {
    res = await api.request(filePath(name), {
      method: 'PUT',
      body: Readable.toWeb(body) as ReadableStream,
      duplex: 'half',
      headers: { 'content-length': String(s.size), 'content-type': 'application/octet-stream' },
    } as RequestInit)
  } finally {
    done()
    own?.stop()
  }
  const text = await res.text()
  const reply = parseJson(text) as Stored | undefined
  if (!res.ok || !reply) throw remoteError(res.status, reply, text)
  const ours = hash.digest('hex')
  if (reply.hash !== ours) throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `the party stored sha256 ${reply.hash} for ${name}; we sent ${ours}`)
  return reply
}

/**
 * Streams a party file to `out` ("-": stdout; undefined: only read and
 * check it), verifying the bytes against the file's sha256 (the ETag). A
 * file is written to OUT.houseparty-partial and renamed only once it checks
 * out, so `out` never holds a torn or wrong copy.
 */
export async function getFile(api: PartyApi, name: string, out: string | undefined, progress?: Progress): Promise<{ size: number; hash: string }> {
  const res = await api.request(filePath(name))
  if (!res.ok || !res.body) throw await replyError(res)
  const total = Number(res.headers.get('content-length') ?? Number.NaN)
  const etag = (res.headers.get('etag') ?? '').replaceAll('"', '')
  const hash = createHash('sha256')
  let size = 0
  // No bar when the bytes themselves go to the terminal.
  const own = progress
    ? undefined
    : new Progress({ files: 1, bytes: Number.isFinite(total) ? total : 0, enabled: out !== '-' && process.stderr.isTTY === true })
  const { meter, done } = (progress ?? (own as Progress)).file(`get ${name}`, Number.isFinite(total) ? total : undefined)
  const tmp = out === undefined || out === '-' ? undefined : `${out}.houseparty-partial`
  if (tmp) await mkdir(dirname(tmp), { recursive: true })
  try {
    const sink = tmp ? createWriteStream(tmp) : out === '-' ? process.stdout : new Writable({ write: (_c, _e, cb) => cb() })
    await pipeline(
      Readable.fromWeb(res.body as WebReadableStream),
      hashing(hash, (n) => {
        size += n
      }),
      meter,
      sink,
      { end: out !== '-' },
    )
  } catch (err) {
    if (tmp) await unlink(tmp).catch(() => undefined)
    throw new HousePartyError('ERR_TRANSFER_FAILED', `the download of ${JSON.stringify(name)} broke off after ${size} bytes: ${(err as Error).message}`)
  } finally {
    done()
    own?.stop()
  }
  const got = hash.digest('hex')
  if ((Number.isFinite(total) && size !== total) || got !== etag) {
    if (tmp) await unlink(tmp).catch(() => undefined)
    throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `${name}: got ${size} bytes with sha256 ${got}; the party announced ${total} bytes, ${etag}`)
  }
  if (tmp) await rename(tmp, out as string)
  return { size, hash: got }
}

/** Copies a party file to another name inside the party, streamed through here and checked on both ends. */
export async function copyFile(api: PartyApi, from: string, to: string, progress?: Progress): Promise<Stored> {
  const res = await api.request(filePath(from))
  if (!res.ok || !res.body) throw await replyError(res)
  const size = Number(res.headers.get('content-length'))
  const etag = (res.headers.get('etag') ?? '').replaceAll('"', '')
  const { meter, done } = (progress ?? new Progress({ files: 1, bytes: size })).file(`cp ${from}`, size)
  let put: Response
  try {
    put = await api.request(filePath(to), {
      method: 'PUT',
      body: Readable.toWeb(Readable.fromWeb(res.body as WebReadableStream).pipe(meter)) as ReadableStream,
      duplex: 'half',
      headers: { 'content-length': String(size), 'content-type': 'application/octet-stream' },
    } as RequestInit)
  } finally {
    done()
  }
  const text = await put.text()
  const reply = parseJson(text) as Stored | undefined
  if (!put.ok || !reply) throw remoteError(put.status, reply, text)
  if (reply.hash !== etag) throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `${to} was stored with sha256 ${reply.hash}; ${from} has ${etag}`)
  return reply
}
