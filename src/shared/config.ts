import { readFileSync } from 'node:fs'
import { HousePartyError } from './errors.ts'
import { PEER_SETTINGS } from './peer-settings.ts'
import { type RawSettings, type Resolved, resolveSettings, setPath } from './settings.ts'

export { ON_STOP_VALUES, type OnStop, PEER_SETTINGS } from './peer-settings.ts'
export { type RawSettings, type Resolved, resolveSettings, type SettingSpec } from './settings.ts'

/** What the settings table resolves to, derived from PEER_SETTINGS: a setting added there is here too. */
type PeerSettings = Resolved<(typeof PEER_SETTINGS)[number]>

/**
 * Everything a peer is told, in one typed object: the settings table
 * resolved, with the party key loaded in place of where it came from.
 */
export type PeerConfig = Omit<PeerSettings, 'keyFile' | 'keyValue'> & { key: Buffer | undefined }
export type RecoverySettings = PeerConfig['recovery']
export type TransferTimings = PeerConfig['transfer']
export type MembershipTimings = PeerConfig['membership']

/** The peer's configuration: PEER_SETTINGS resolved (flags, then environment, then defaults), the key loaded, validated. */
export function resolvePeerConfig(flags: RawSettings, env: NodeJS.ProcessEnv = process.env): PeerConfig {
  const { keyFile, keyValue, ...rest } = resolveSettings(PEER_SETTINGS, flags, env)
  const config: PeerConfig = { ...rest, key: loadKey(keyFile, keyValue) }
  if (config.apiHost === '') config.apiHost = config.host
  validatePeerConfig(config)
  return config
}

function loadKey(keyFile: string, keyValue: string): Buffer | undefined {
  if (keyFile !== '' && keyValue !== '') {
    throw new HousePartyError('ERR_INVALID_CONFIG', 'give the party key with --key-file or --key, not both')
  }
  let text = keyValue
  if (keyFile !== '') {
    try {
      text = readFileSync(keyFile, 'utf8')
    } catch (err) {
      throw new HousePartyError('ERR_INVALID_CONFIG', `cannot read --key-file ${keyFile}: ${(err as Error).message}`)
    }
  }
  text = text.trim()
  if (text === '') return undefined
  if (Buffer.byteLength(text) < 16) {
    throw new HousePartyError('ERR_INVALID_CONFIG', 'the party key must be at least 16 characters (houseparty keygen makes one)')
  }
  return Buffer.from(text, 'utf8')
}

export function validatePeerConfig(c: PeerConfig): void {
  const bad = (msg: string): never => {
    throw new HousePartyError('ERR_INVALID_CONFIG', msg)
  }
  if (c.key === undefined && !c.insecure) {
    bad('no party key: pass --key-file FILE (or HOUSEPARTY_KEY), or --insecure to run without authentication')
  }
  if (c.key !== undefined && c.insecure) bad('--insecure and a party key contradict each other')
  const m = c.membership
  if (m.suspectAfterMs < 2 * m.pingIntervalMs) bad('--suspect-after-ms must be at least twice --ping-interval-ms')
  const r = c.recovery
  if (r.censusIntervalMs !== 0 && r.censusIntervalMs < 500) bad('--census-interval-ms must be 0 or at least 500')
  const s3 = c.s3
  if ((s3.accessKey === '') !== (s3.secretKey === '')) bad('give the S3 admin key whole: --s3-access-key and --s3-secret-key, or neither')
  if (s3.accessKey !== '' && !/^[A-Za-z0-9]{3,128}$/.test(s3.accessKey)) bad('--s3-access-key must be 3 to 128 letters and digits')
  if (s3.secretKey !== '' && s3.secretKey.length < 8) bad('--s3-secret-key must be at least 8 characters')
  if (!/^[a-z0-9-]{1,64}$/.test(s3.region)) bad('--s3-region must be lowercase letters, digits and hyphens (e.g. us-east-1)')
  if ((c.tls.certFile === '') !== (c.tls.keyFile === '')) bad('give TLS whole: --tls-cert-file and --tls-key-file, or neither')
}

export function defaultMembershipTimings(): MembershipTimings {
  const out: Record<string, unknown> = {}
  for (const spec of PEER_SETTINGS) if (spec.key.startsWith('membership.')) setPath(out, spec.key, spec.default)
  return (out as { membership: MembershipTimings }).membership
}
