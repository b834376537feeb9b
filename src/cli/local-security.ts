import { randomBytes, X509Certificate } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** What a local party's peers serve HTTPS with, and the token its API wants: files in its data dir, made once. */
export interface LocalSecurity {
  caFile: string
  certFile: string
  keyFile: string
  token: string
}

/** A certificate is made again this long before it runs out (the CA, good for ten years, stays). */
const RENEW_BEFORE_MS = 30 * 24 * 3600_000

async function expiresSoon(certFile: string): Promise<boolean> {
  return Date.parse(new X509Certificate(await readFile(certFile)).validTo) - Date.now() < RENEW_BEFORE_MS
}

/** The names the local certificate is for: where a local party's APIs listen. */
const LOCAL_NAMES = ['127.0.0.1', 'localhost']

/**
 * Makes (or reuses) a local party's CA (`ca.crt`, `ca.key`), the peers'
 * certificate for 127.0.0.1 and localhost signed by it (`tls.crt`,
 * `tls.key`) and an API token (`api-token`), all readable by their owner
 * only. The CA is made once: a client that trusts it keeps trusting the
 * party across restarts.
 */
export async function localSecurity(dir: string): Promise<LocalSecurity> {
  const path = (name: string): string => join(dir, name)
  const secret = { mode: 0o600 }
  if (!existsSync(path('ca.crt')) || !existsSync(path('ca.key'))) {
    const { newAuthority } = await import('./certs.ts')
    const ca = await newAuthority('House Party local party CA')
    await writeFile(path('ca.key'), ca.key, secret)
    await writeFile(path('ca.crt'), ca.cert)
  }
  if (!existsSync(path('tls.crt')) || !existsSync(path('tls.key')) || (await expiresSoon(path('tls.crt')))) {
    const { issueServerCert } = await import('./certs.ts')
    const ca = { cert: await readFile(path('ca.crt'), 'utf8'), key: await readFile(path('ca.key'), 'utf8') }
    const issued = await issueServerCert(ca, LOCAL_NAMES)
    await writeFile(path('tls.key'), issued.key, secret)
    await writeFile(path('tls.crt'), issued.cert)
  }
  if (!existsSync(path('api-token'))) await writeFile(path('api-token'), `${randomBytes(24).toString('base64url')}\n`, secret)
  return { caFile: path('ca.crt'), certFile: path('tls.crt'), keyFile: path('tls.key'), token: (await readFile(path('api-token'), 'utf8')).trim() }
}
