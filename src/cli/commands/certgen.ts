import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Command } from 'commander'
import { HousePartyError } from '../../shared/errors.ts'
import { type Issued, issueServerCert, newAuthority } from '../certs.ts'

export interface ReleaseNames {
  release: string
  namespace: string
  clusterDomain: string
  extra: string[]
}

/** The chart's name for a release's objects (its fullname): the release's name when it says houseparty already. */
export const releaseFullname = (release: string): string => (release.includes('houseparty') ? release : `${release}-houseparty`)

/**
 * The names a release's clients reach its API and S3 endpoint by, as the
 * chart's certificate carries them: the client Service, every peer (a
 * wildcard under the peers' headless Service), localhost for a port-forward.
 */
export function releaseDnsNames(r: ReleaseNames): string[] {
  const full = releaseFullname(r.release)
  const svc = `${r.namespace}.svc`
  return [
    full,
    `${full}.${r.namespace}`,
    `${full}.${svc}`,
    `${full}.${svc}.${r.clusterDomain}`,
    `*.${full}-peers.${svc}`,
    `*.${full}-peers.${svc}.${r.clusterDomain}`,
    'localhost',
    '127.0.0.1',
    ...r.extra,
  ]
}

/** The CA in `dir` (ca.crt and ca.key), or a new one written there. */
async function authorityIn(dir: string, days: number): Promise<Issued & { made: boolean }> {
  const cert = join(dir, 'ca.crt')
  const key = join(dir, 'ca.key')
  if (existsSync(cert) !== existsSync(key)) throw new HousePartyError('ERR_INVALID_CONFIG', `${dir} holds one of ca.crt and ca.key: both or neither`)
  if (existsSync(cert)) return { cert: await readFile(cert, 'utf8'), key: await readFile(key, 'utf8'), made: false }
  const ca = await newAuthority('houseparty CA', days)
  await writeFile(key, ca.key, { mode: 0o600 })
  await writeFile(cert, ca.cert)
  return { ...ca, made: true }
}

export function registerCertgenCommand(program: Command): void {
  program
    .command('certgen')
    .description('make a CA (once) and a certificate for a release’s API and S3 endpoint, for a TLS Secret (plain manifests, tls.existingSecret)')
    .requiredOption('--out <dir>', 'where ca.crt, ca.key, tls.crt and tls.key go; a CA already there signs the new certificate (renewal)')
    .option('--release <name>', 'the Helm release (or manifests) name', 'houseparty')
    .option('--namespace <ns>', 'the release’s namespace', 'houseparty')
    .option('--cluster-domain <domain>', 'the cluster’s DNS domain', 'cluster.local')
    .option('--dns-name <name...>', 'more names the certificate covers (an Ingress host, the S3 domain and *.domain)', [])
    .option('--days <n>', 'lifetime of the certificate (a new CA lives ten years)', '825')
    .action(async (o: { out: string; release: string; namespace: string; clusterDomain: string; dnsName: string[]; days: string }) => {
      const days = Number(o.days)
      if (!Number.isInteger(days) || days < 1) throw new HousePartyError('ERR_INVALID_ARGUMENT', `--days must be a whole number of days, not ${o.days}`)
      await mkdir(o.out, { recursive: true })
      const ca = await authorityIn(o.out, 3650)
      const names = releaseDnsNames({ release: o.release, namespace: o.namespace, clusterDomain: o.clusterDomain, extra: o.dnsName })
      const cert = await issueServerCert(ca, names, { days })
      await writeFile(join(o.out, 'tls.key'), cert.key, { mode: 0o600 })
      await writeFile(join(o.out, 'tls.crt'), cert.cert)
      process.stdout.write(
        `${ca.made ? 'a new CA' : 'the CA'} in ${o.out} signed a certificate for ${names.join(', ')} (${days} days)\n` +
          `  kubectl -n ${o.namespace} create secret generic ${releaseFullname(o.release)}-tls --from-file=${join(o.out, 'ca.crt')} --from-file=${join(o.out, 'tls.crt')} --from-file=${join(o.out, 'tls.key')}\n` +
          `keep ${join(o.out, 'ca.key')} out of the cluster: it signs the renewals (run this again with the same --out)\n`,
      )
    })
}
