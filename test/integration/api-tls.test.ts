import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:https'
import { connect as connectNet, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { connect as connectTls } from 'node:tls'
import { promisify } from 'node:util'
import { type Issued, newAuthority, issueServerCert as serverCert } from '../../src/cli/certs.ts'
import { CLI, partiesForThisFile } from '../helpers/party.ts'
import { waitFor } from '../helpers/wait.ts'

const run = promisify(execFile)
const newParty = partiesForThisFile()

/**
 * The HTTP API and the S3 endpoint over TLS, with certificates from files
 * (as a Kubernetes TLS Secret mounts them), against real clients: the CLI
 * with and without the party's CA, certificates for the wrong host or out of
 * date, a certificate replaced on disk under a running peer, and clients
 * that open TLS handshakes and never finish them.
 */
describe('TLS on the HTTP API and the S3 endpoint', () => {
  let dir = ''
  let ca: Issued
  let party: Awaited<ReturnType<typeof newParty>>['party']
  const files = { cert: '', key: '', ca: '' }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'houseparty-tls-'))
    ca = await newAuthority('House Party test CA')
    files.cert = join(dir, 'tls.crt')
    files.key = join(dir, 'tls.key')
    files.ca = join(dir, 'ca.crt')
    const issued = await serverCert(ca, ['127.0.0.1', 'localhost'])
    await writeFile(files.cert, issued.cert)
    await writeFile(files.key, issued.key)
    await writeFile(files.ca, ca.cert)
    ;({ party } = await newParty(3, ['--tls-cert-file', files.cert, '--tls-key-file', files.key]))
    await Promise.all([0, 1, 2].map((i) => party.start(i)))
    // Agreement is asked over plain HTTP by the helper: ask over TLS instead.
    await waitFor(
      'three guests over https',
      async () => {
        const out = await cli(['guests', '--json'], 0).catch(() => undefined)
        return out !== undefined && (JSON.parse(out) as { guests: unknown[] }).guests.length === 3
      },
      { timeoutMs: 60_000, intervalMs: 300 },
    )
  })
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  /** Runs the CLI against peer `i` over https; with the party's CA unless told otherwise. */
  const cli = async (args: string[], i: number, extra: string[] = ['--ca-file', files.ca]): Promise<string> => {
    const env: NodeJS.ProcessEnv = { ...process.env, HOUSEPARTY_CONFIG: join(dir, 'cli.json') }
    for (const k of Object.keys(env)) if (k.startsWith('HOUSEPARTY_') && k !== 'HOUSEPARTY_CONFIG') delete env[k]
    return (await run(process.execPath, [CLI, ...args, '--peer', `https://127.0.0.1:${party.peer(i).apiPort}`, ...extra], { env })).stdout
  }

  it('the CLI puts and gets over https with the party CA; without it, or with a wrong host or an expired certificate, it refuses and says why', async () => {
    const local = join(dir, 'hello.txt')
    await writeFile(local, 'hello over TLS\n')
    await cli(['put', local, '--name', 'tls/hello.txt'], 1)
    assert.equal(await cli(['cat', 'tls/hello.txt'], 2), 'hello over TLS\n')
    await assert.rejects(cli(['ls'], 0, []), /does not trust .*(SELF_SIGNED|UNABLE_TO_VERIFY).*--ca-file/s)
    // --insecure-skip-verify works, and says so.
    const insecure = await run(process.execPath, [CLI, 'ls', '--peer', `https://127.0.0.1:${party.peer(0).apiPort}`, '--insecure-skip-verify'], {
      env: { ...process.env, HOUSEPARTY_CONFIG: join(dir, 'cli.json') },
    })
    assert.match(insecure.stderr, /warning: --insecure-skip-verify/)
    // A certificate for another host, then an expired one, each served by a peer as soon as it is on disk.
    await install(await serverCert(ca, ['other.example'], { serial: '10' }))
    await waitFor('the wrong-host certificate served', async () => /ALTNAME/.test(await cli(['ls'], 0).catch((e: Error) => e.message)), {
      timeoutMs: 30_000,
      intervalMs: 500,
    })
    await install(
      await serverCert(ca, ['127.0.0.1'], { serial: '11', notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) }),
    )
    await waitFor('the expired certificate served', async () => /CERT_HAS_EXPIRED/.test(await cli(['ls'], 0).catch((e: Error) => e.message)), {
      timeoutMs: 30_000,
      intervalMs: 500,
    })
    await install(await serverCert(ca, ['127.0.0.1', 'localhost'], { serial: '12' }))
    await waitFor('a good certificate again', async () => (await cli(['ls', 'tls/'], 0).catch(() => '')).includes('hello.txt'), {
      timeoutMs: 30_000,
      intervalMs: 500,
    })
  })

  it('a certificate rotated on disk is served to new connections without a restart; half-written files are skipped', async () => {
    const pid = party.peer(0).process?.pid
    await writeFile(files.cert, '-----BEGIN CERTIFICATE-----\nnot a certificate\n')
    await new Promise((r) => setTimeout(r, 6_000))
    assert.equal((await servedSerial(party.peer(0).apiPort)).toLowerCase(), '12', 'the last good certificate is still served')
    await install(await serverCert(ca, ['127.0.0.1', 'localhost'], { serial: '2a' }))
    await waitFor('the rotated certificate', async () => (await servedSerial(party.peer(0).apiPort)).toLowerCase() === '2a', {
      timeoutMs: 30_000,
      intervalMs: 300,
    })
    assert.equal(party.peer(0).process?.pid, pid, 'the same process')
    assert.match(await party.readLog(0), /TLS certificate reloaded/)
  })

  it('the S3 endpoint speaks TLS with the same certificate', async () => {
    // Each peer reads the files on its own 5 s clock: the earlier tests waited on peer 0 alone, so this one waits
    // until peer 1 serves the current certificate too (under load it may still hold an earlier one).
    await waitFor('peer 1 to serve the rotated certificate', async () => (await servedSerial(party.peer(1).s3Port)).toLowerCase() === '2a', {
      timeoutMs: 30_000,
      intervalMs: 300,
    })
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: party.peer(1).s3Port, path: '/', ca: ca.cert }, (res) => {
        let body = ''
        res.on('data', (d) => {
          body += d
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      req.on('error', reject)
      req.end()
    })
    assert.equal(answer.status, 403)
    assert.match(answer.body, /<Code>AccessDenied<\/Code>/)
  })

  it('clients that open TLS handshakes and never finish them are cut, and others are served meanwhile', async () => {
    const port = party.peer(2).apiPort
    const held: Socket[] = []
    let closed = 0
    for (let i = 0; i < 300; i++) {
      const s = connectNet(port, '127.0.0.1')
      s.on('error', () => undefined)
      s.on('close', () => closed++)
      s.resume()
      s.on('connect', () => s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])))
      held.push(s)
    }
    assert.match(await cli(['guests'], 2), /3 guests/)
    await waitFor('every held handshake cut', () => closed === held.length, { timeoutMs: 30_000, intervalMs: 200 })
    for (const s of held) s.destroy()
  })

  async function install(issued: { cert: string; key: string }): Promise<void> {
    // As a Secret volume is updated: both files replaced (the key first, then the certificate).
    await writeFile(`${files.key}.new`, issued.key)
    await writeFile(`${files.cert}.new`, issued.cert)
    await run('mv', [`${files.key}.new`, files.key])
    await run('mv', [`${files.cert}.new`, files.cert])
  }

  function servedSerial(port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = connectTls({ host: '127.0.0.1', port, ca: ca.cert, rejectUnauthorized: false }, () => {
        resolve(s.getPeerCertificate().serialNumber)
        s.end()
      })
      s.on('error', reject)
    })
  }
})
