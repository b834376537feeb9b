import { ERROR_CODES, type ErrorCode, HousePartyError } from '../shared/errors.ts'

/** Default API address: the first peer of a local party (and a lone peer's default --api-port). */
export const DEFAULT_PEER = process.env.HOUSEPARTY_PEER ?? '127.0.0.1:7480'

export function apiBase(peer: string): string {
  return peer.startsWith('http://') || peer.startsWith('https://') ? peer.replace(/\/$/, '') : `http://${peer}`
}

/** GETs JSON from a peer's API, turning its { error } replies into coded errors. */
export async function getJson<T>(peer: string, path: string, init: RequestInit = {}): Promise<T> {
  let res: Response
  try {
    res = await fetch(`${apiBase(peer)}${path}`, { ...init, signal: init.signal ?? AbortSignal.timeout(10_000) })
  } catch (err) {
    throw new HousePartyError('ERR_TIMEOUT', `cannot reach peer API at ${peer}: ${(err as Error).message}`, { cause: err })
  }
  const text = await res.text()
  let body: unknown
  try {
    body = text === '' ? {} : JSON.parse(text)
  } catch {
    throw new HousePartyError('ERR_PROTOCOL', `peer ${peer} answered ${res.status} with non-JSON: ${text.slice(0, 200)}`)
  }
  if (!res.ok) throw remoteError(res.status, body, text)
  return body as T
}

/** A peer's { error: { code, message } } reply as a HousePartyError with the same code. */
export function remoteError(status: number, body: unknown, text = ''): HousePartyError {
  const e = (body as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined)?.error
  const code = e?.code && e.code in ERROR_CODES ? (e.code as ErrorCode) : 'ERR_INTERNAL'
  return new HousePartyError(code, e?.message ?? `HTTP ${status}: ${text.slice(0, 200)}`, { details: e?.details })
}

/** Authorization header for --token / HOUSEPARTY_API_TOKEN. */
export function authHeaders(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {}
}

/** A file name as one URL path segment run (slashes kept, everything else escaped). */
export function filePath(name: string): string {
  return `/files/${name.split('/').map(encodeURIComponent).join('/')}`
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
