import { rootCertificates } from 'node:tls'
import { Agent } from 'undici'
import { joinAddress, splitAddress } from '../peer/net/index.ts'
import { ERROR_CODES, type ErrorCode, HousePartyError } from '../shared/errors.ts'
import { delay } from '../shared/lifecycle.ts'
import type { Target } from './target.ts'

/** How long a read waits on another guest before trying the next: a leaving peer's guests answer at once, or are not reachable from here. */
const OTHER_GUEST_TIMEOUT_MS = 3_000

/**
 * A file name as the path of /files/NAME, sent exactly as given: each
 * segment escaped. A name that URL normalisation would change (a "." or
 * ".." segment, an empty one, a leading "/") goes as one escaped segment,
 * so the peer sees it unchanged and its own check (ERR_BAD_NAME) answers.
 */
export function filePath(name: string): string {
  const segments = name.split('/')
  const opaque = segments.some((s) => s === '' || /^(\.|%2e){1,2}$/i.test(s))
  return `/files/${opaque ? encodeURIComponent(name) : segments.map(encodeURIComponent).join('/')}`
}

/** Why a request never got an answer, in words that say what to check. */
function unreachable(target: Target, err: unknown): HousePartyError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause
  const reason =
    cause?.code === 'ECONNREFUSED' ? 'connection refused' : cause?.code === 'ENOTFOUND' ? 'no such host' : (cause?.message ?? (err as Error).message)
  if (cause?.code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(cause.code)) {
    return new HousePartyError(
      'ERR_PARTY_UNREACHABLE',
      `the peer at ${target.base} presented a certificate this CLI does not trust (${cause.code}: ${cause.message}); give the party's CA with --ca-file (or save it with the alias), or, knowingly, --insecure-skip-verify`,
      { cause: err },
    )
  }
  if ((err as Error).name === 'TimeoutError') {
    return new HousePartyError('ERR_TIMEOUT', `the peer API at ${target.base} did not answer in time`, { cause: err })
  }
  return new HousePartyError(
    'ERR_PARTY_UNREACHABLE',
    `cannot reach a peer API at ${target.base} (${reason}); is a peer running there? Check --peer or HOUSEPARTY_PEER (see \`houseparty alias ls\`)`,
    { cause: err },
  )
}

/** A peer's { error: { code, message } } reply as a HousePartyError with the same code. */
export function remoteError(status: number, body: unknown, text = ''): HousePartyError {
  const e = (body as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined)?.error
  const code =
    e?.code && e.code in ERROR_CODES ? (e.code as ErrorCode) : status === 401 ? 'ERR_UNAUTHORIZED' : status === 404 ? 'ERR_NOT_FOUND' : 'ERR_INTERNAL'
  return new HousePartyError(code, e?.message ?? `HTTP ${status}: ${text.slice(0, 200)}`, { details: e?.details })
}

/** JSON text parsed, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** The error a failed reply carries (its body read). */
export async function replyError(res: Response): Promise<HousePartyError> {
  const text = await res.text().catch(() => '')
  return remoteError(res.status, parseJson(text), text)
}

/** A party's HTTP API as the CLI uses it: one peer, a token, errors with codes and hints. */
export class PartyApi {
  readonly target: Target
  /** Connections trusting the target's CA (or not checking at all); undefined: the system's trust, as fetch has by default. */
  readonly #dispatcher: Agent | undefined

  constructor(target: Target) {
    this.target = target
    if (target.ca || target.insecure) {
      this.#dispatcher = new Agent({ connect: { ...(target.ca ? { ca: [...rootCertificates, target.ca] } : {}), rejectUnauthorized: !target.insecure } })
    }
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.target.token ? { authorization: `Bearer ${this.target.token}`, ...extra } : extra
  }

  /**
   * A raw request; never-answered requests become ERR_PARTY_UNREACHABLE / ERR_TIMEOUT.
   * A read (GET or HEAD) that meets a peer about to leave, or one not (yet)
   * a guest, is asked of another guest, and then of the same address again
   * after its Retry-After (behind a Service, that reaches another pod).
   */
  async request(path: string, init: RequestInit = {}): Promise<Response> {
    const res = await this.#send(this.target.base, path, init)
    const method = (init.method ?? 'GET').toUpperCase()
    if (res.status !== 503 || (method !== 'GET' && method !== 'HEAD')) return res
    const text = await res.text().catch(() => '')
    const code = (parseJson(text) as { error?: { code?: string } } | undefined)?.error?.code
    const again = (): Response => new Response(method === 'HEAD' ? null : text, { status: res.status, headers: res.headers })
    if (code !== 'ERR_LEAVING' && code !== 'ERR_NOT_ADMITTED') return again()
    for (const base of await this.#otherGuests(init.signal ?? undefined)) {
      const other = await this.#send(base, path, {
        ...init,
        signal: AbortSignal.any([AbortSignal.timeout(OTHER_GUEST_TIMEOUT_MS), ...(init.signal ? [init.signal] : [])]),
      }).catch(() => undefined)
      if (other && other.status !== 503) return other
      await other?.body?.cancel()
    }
    const wait = Math.min(10, Number(res.headers.get('retry-after') ?? 1) || 1)
    await delay(wait * 1000, init.signal ?? undefined)
    return this.#send(this.target.base, path, init)
  }

  async #send(base: string, path: string, init: RequestInit): Promise<Response> {
    try {
      const headers = this.headers(init.headers as Record<string, string> | undefined)
      return await fetch(`${base}${path}`, { ...init, headers, ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}) } as RequestInit)
    } catch (err) {
      throw unreachable(this.target, err)
    }
  }

  /** The API addresses of the other guests, as the asked peer lists them (none if it cannot say). */
  async #otherGuests(signal: AbortSignal | undefined): Promise<string[]> {
    try {
      const res = await this.#send(this.target.base, '/guests', {
        signal: AbortSignal.any([AbortSignal.timeout(OTHER_GUEST_TIMEOUT_MS), ...(signal ? [signal] : [])]),
      })
      if (!res.ok) return []
      const { guests } = (await res.json()) as { guests: { address: string; apiPort: number; self: boolean }[] }
      const scheme = new URL(this.target.base).protocol
      return guests.filter((g) => !g.self).map((g) => `${scheme}//${joinAddress(splitAddress(g.address).host, g.apiPort)}`)
    } catch {
      return []
    }
  }

  /** A JSON request; an { error } reply becomes a HousePartyError with the peer's code. */
  async json<T>(path: string, init: RequestInit = {}): Promise<T> {
    const res = await this.request(path, { ...init, signal: init.signal ?? AbortSignal.timeout(60_000) })
    const text = await res.text()
    let body: unknown
    try {
      body = text === '' ? {} : JSON.parse(text)
    } catch {
      throw new HousePartyError('ERR_PROTOCOL', `${this.target.base} answered ${res.status} with something other than JSON: ${text.slice(0, 200)}`)
    }
    if (!res.ok) throw remoteError(res.status, body, text)
    return body as T
  }
}

/** Renders rows as an aligned plain-text table. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd()
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

/** "1 file", "2 files". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`
}
