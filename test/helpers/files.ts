import { createHash } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Deterministic pseudo-random bytes (so a failing size can be replayed). */
export function bytesOf(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size)
  let x = (seed * 2654435761) >>> 0 || 1
  let i = 0
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    out.writeUInt32LE(x, i)
  }
  for (; i < size; i++) out[i] = (x >>> (8 * (i % 4))) & 0xff
  return out
}

export function fileUrl(api: string, name: string): string {
  return `http://${api}/files/${name.split('/').map(encodeURIComponent).join('/')}`
}

export async function putBytes(api: string, name: string, data: Uint8Array, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(fileUrl(api, name), { method: 'PUT', body: data, headers, signal: AbortSignal.timeout(120_000) })
}

export async function getBytes(
  api: string,
  name: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Buffer; etag: string | null; json?: unknown }> {
  const res = await fetch(fileUrl(api, name), { headers, signal: AbortSignal.timeout(120_000) })
  const body = Buffer.from(await res.arrayBuffer())
  let json: unknown
  if (!res.ok) json = JSON.parse(body.toString('utf8') || '{}')
  return { status: res.status, body, etag: res.headers.get('etag'), json }
}

/** Every fragment file under a peer's data directory. */
export async function fragmentFiles(dataDir: string): Promise<string[]> {
  const root = join(dataDir, 'fragments')
  const out: string[] = []
  for (const a of await readdir(root).catch(() => [])) {
    for (const b of await readdir(join(root, a)).catch(() => [])) {
      for (const f of await readdir(join(root, a, b)).catch(() => [])) if (f.endsWith('.frag')) out.push(join(root, a, b, f))
    }
  }
  return out
}
