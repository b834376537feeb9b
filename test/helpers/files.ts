import { createHash } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'

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

/**
 * Flips one byte of a small fragment kept inline in a peer's fragments.db
 * (bit rot in its row), while the peer runs: of `version` and `index` when
 * given. Returns the fragment's key, or undefined if the peer keeps none.
 */
export function corruptInlineFragment(dataDir: string, where: { version?: string; index?: number } = {}): string | undefined {
  const db = new DatabaseSync(join(dataDir, 'fragments.db'))
  try {
    db.exec('PRAGMA busy_timeout = 10000')
    const v = where.version ?? null
    const i = where.index ?? null
    // The bytes are in a row of `blobs` (or, in a row written before schema 7, in the fragment's own row).
    const row = db
      .prepare(
        `SELECT f.key, f.blob, coalesce(b.data, f.data) AS data FROM fragments f LEFT JOIN blobs b ON b.id = f.blob
          WHERE length(coalesce(b.data, f.data)) > 0 AND (? IS NULL OR f.version = ?) AND (? IS NULL OR f.idx = ?) LIMIT 1`,
      )
      .get(v, v, i, i) as { key: string; blob: number | null; data: Uint8Array } | undefined
    if (!row) return undefined
    const data = Buffer.from(row.data)
    const at = data.length >> 1
    data[at] = (data[at] as number) ^ 0xff
    if (row.blob === null) db.prepare('UPDATE fragments SET data = ? WHERE key = ?').run(data, row.key)
    else db.prepare('UPDATE blobs SET data = ? WHERE id = ?').run(data, row.blob)
    return row.key
  } finally {
    db.close()
  }
}

/** Whether a peer's fragments.db still has the row of fragment `key` (read while the peer runs). */
export function holdsFragmentRow(dataDir: string, key: string): boolean {
  const db = new DatabaseSync(join(dataDir, 'fragments.db'), { readOnly: true })
  try {
    db.exec('PRAGMA busy_timeout = 10000')
    return db.prepare('SELECT 1 FROM fragments WHERE key = ?').get(key) !== undefined
  } finally {
    db.close()
  }
}

/**
 * The whole environment of an S3 client program run by a test (the AWS CLI, rclone): its own home and
 * config files, the key, and an rclone remote `hp` at `endpoint`. Nothing of the caller's environment.
 */
export function s3ClientEnv(home: string, key: { accessKeyId: string; secretAccessKey: string }, endpoint: string, caFile?: string): NodeJS.ProcessEnv {
  return {
    // rclone's own flag: its AWS SDK fails on AWS_CA_BUNDLE (aws takes --ca-bundle instead).
    ...(caFile ? { RCLONE_CA_CERT: caFile } : {}),
    PATH: '/usr/bin:/bin',
    HOME: home,
    AWS_ACCESS_KEY_ID: key.accessKeyId,
    AWS_SECRET_ACCESS_KEY: key.secretAccessKey,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: `${home}/aws-config`,
    AWS_SHARED_CREDENTIALS_FILE: `${home}/aws-credentials`,
    AWS_PAGER: '',
    RCLONE_CONFIG: `${home}/rclone.conf`,
    RCLONE_CONFIG_HP_TYPE: 's3',
    RCLONE_CONFIG_HP_PROVIDER: 'Other',
    RCLONE_CONFIG_HP_ENDPOINT: endpoint,
    RCLONE_CONFIG_HP_ACCESS_KEY_ID: key.accessKeyId,
    RCLONE_CONFIG_HP_SECRET_ACCESS_KEY: key.secretAccessKey,
    RCLONE_CONFIG_HP_REGION: 'us-east-1',
  }
}
