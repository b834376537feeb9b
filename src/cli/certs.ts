import 'reflect-metadata'
import { webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'

/**
 * A certificate authority of one's own and the certificates it signs
 * (ECDSA P-256), for a local party's HTTPS: `houseparty party` makes a CA
 * once into its data dir and a certificate for 127.0.0.1 and localhost.
 */
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const
const DAY = 24 * 3600_000

/** A certificate and its private key, both PEM. */
export interface Issued {
  cert: string
  key: string
}

async function keyPair(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair
}

const pemKey = async (key: webcrypto.CryptoKey): Promise<string> => x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY')

/** A new CA certificate, valid from a day ago for `days`. */
export async function newAuthority(name: string, days = 3650): Promise<Issued> {
  const keys = await keyPair()
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: webcrypto.getRandomValues(Buffer.alloc(8)).toString('hex'),
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + days * DAY),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  })
  return { cert: `${cert.toString('pem')}\n`, key: await pemKey(keys.privateKey) }
}

/** A server certificate signed by `ca` for `names` (DNS names or IPv4 addresses). */
export async function issueServerCert(
  ca: Issued,
  names: string[],
  options: { serial?: string; notBefore?: Date; notAfter?: Date; days?: number } = {},
): Promise<Issued> {
  const authority = new x509.X509Certificate(ca.cert)
  const signingKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(ca.key), ALG, false, ['sign'])
  const keys = await keyPair()
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: options.serial ?? webcrypto.getRandomValues(Buffer.alloc(8)).toString('hex'),
    subject: `CN=${names[0]}`,
    issuer: authority.subject,
    notBefore: options.notBefore ?? new Date(Date.now() - DAY),
    notAfter: options.notAfter ?? new Date(Date.now() + (options.days ?? 825) * DAY),
    signingKey,
    publicKey: keys.publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.SubjectAlternativeNameExtension(names.map((n) => (/^[\d.]+$/.test(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n }))),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    ],
  })
  return { cert: `${cert.toString('pem')}\n`, key: await pemKey(keys.privateKey) }
}
