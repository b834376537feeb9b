import { HousePartyError } from '../shared/errors.ts'

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
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string } }).error
    throw new HousePartyError('ERR_INTERNAL', `${e?.code ?? res.status}: ${e?.message ?? text.slice(0, 200)}`)
  }
  return body as T
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
