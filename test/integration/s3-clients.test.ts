import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import type { LocalParty } from '../../src/cli/local-party.ts'
import { bytesOf, s3ClientEnv } from '../helpers/files.ts'
import { partiesForThisFile, startParty } from '../helpers/party.ts'

const newParty = partiesForThisFile()
const exec = promisify(execFile)
const MiB = 1024 * 1024

/**
 * The S3 clients people already use, run as they would run them, against a
 * party of 3 real peers: the Debian packages of the AWS CLI v2, rclone,
 * s3cmd, restic and boto3 (.ci/run installs them). Each runs with an
 * environment of its own (never the caller's), its settings in a temporary
 * home, pointed at one peer or another.
 */
async function tree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const path = join(d, e.name)
      if (e.isDirectory()) await walk(path)
      else
        out.set(
          relative(dir, path),
          createHash('sha256')
            .update(await readFile(path))
            .digest('hex'),
        )
    }
  }
  await walk(dir)
  return out
}

describe('real S3 clients against a party of 3 peers', () => {
  let party: LocalParty
  let home: string
  let source: string
  let env: NodeJS.ProcessEnv
  const endpoint = (peer: number): string => `http://127.0.0.1:${party.peer(peer).s3Port}`
  const run = async (file: string, args: string[], extra: NodeJS.ProcessEnv = {}): Promise<string> => {
    try {
      return (await exec(file, args, { env: { ...env, ...extra }, cwd: home, maxBuffer: 64 * MiB, timeout: 300_000 })).stdout
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string }
      throw new Error(`${file} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`)
    }
  }

  before(async () => {
    // Virtual-host style needs a domain: BUCKET.s3.party.test (curl is pointed at a peer by --connect-to).
    ;({ party } = await newParty(3, ['--s3-domain', 's3.party.test']))
    await startParty(party, 3)
    home = await mkdtemp(join(tmpdir(), 'houseparty-s3-clients-'))
    source = join(home, 'source')
    // A tree with small files, an empty one, names with spaces, and one large enough for multipart uploads (20 MiB).
    const files: [string, Buffer][] = [
      ['a.txt', Buffer.from('hello\n')],
      ['empty', Buffer.alloc(0)],
      ['dir one/b.bin', bytesOf(100_000, 1)],
      ['dir one/deeper/c.bin', bytesOf(1_234_567, 2)],
      ['big.bin', bytesOf(20 * MiB + 3, 3)],
    ]
    for (const [name, data] of files) {
      await mkdir(join(source, name, '..'), { recursive: true })
      await writeFile(join(source, name), data)
    }
    const { accessKeyId, secretAccessKey } = party.s3Key
    env = s3ClientEnv(home, { accessKeyId, secretAccessKey }, endpoint(1))
  })
  after(async () => {
    if (home) await rm(home, { recursive: true, force: true })
  })

  it('the AWS CLI v2: mb, cp of 100 MiB (multipart), sync both ways, ls --recursive, rm', async () => {
    const aws = (peer: number, ...args: string[]) => run('/usr/bin/aws', ['--endpoint-url', endpoint(peer), ...args])
    const hundred = join(home, 'hundred.bin')
    await writeFile(hundred, bytesOf(100 * MiB, 4))
    await aws(0, 's3', 'mb', 's3://awscli')
    await aws(1, 's3', 'sync', '--no-progress', source, 's3://awscli/tree')
    await aws(2, 's3', 'cp', '--no-progress', hundred, 's3://awscli/single/hundred.bin')
    const listed = await aws(0, 's3', 'ls', '--recursive', 's3://awscli/tree/')
    assert.equal(listed.trim().split('\n').length, 5, listed)
    const back = join(home, 'awscli-back')
    await aws(2, 's3', 'sync', '--no-progress', 's3://awscli/tree', back)
    assert.deepEqual(await tree(back), await tree(source))
    await aws(1, 's3', 'cp', '--no-progress', 's3://awscli/single/hundred.bin', join(home, 'hundred.back'))
    const hashOf = async (path: string): Promise<string> =>
      createHash('sha256')
        .update(await readFile(path))
        .digest('hex')
    assert.equal(await hashOf(join(home, 'hundred.back')), await hashOf(hundred))
    await rm(hundred)
    await rm(join(home, 'hundred.back'))
    const head = JSON.parse(await aws(0, 's3api', 'head-object', '--bucket', 'awscli', '--key', 'tree/big.bin')) as { ETag: string; ContentLength: number }
    assert.match(head.ETag, /^"[0-9a-f]{32}-\d+"$/, 'a multipart ETag')
    assert.equal(head.ContentLength, 20 * MiB + 3)
    await aws(0, 's3', 'rm', '--recursive', 's3://awscli/')
    await aws(1, 's3', 'rb', 's3://awscli')
    assert.doesNotMatch(await aws(2, 's3', 'ls'), /awscli/)
  })

  it('rclone: sync, check (0 differences, by size and MD5 against the ETags), lsf, purge', async () => {
    // The remote "hp" is peer 1's endpoint (s3ClientEnv).
    await run('/usr/bin/rclone', ['mkdir', 'hp:rclone'])
    await run('/usr/bin/rclone', ['sync', source, 'hp:rclone/tree', '--s3-upload-cutoff', '5M', '--s3-chunk-size', '5M'])
    // rclone check exits non-zero on any difference, and says on stderr how many it found.
    const checked = await exec('/usr/bin/rclone', ['check', source, 'hp:rclone/tree'], { env, cwd: home })
    assert.match(checked.stderr, /: 0 differences found/)
    const names = (await run('/usr/bin/rclone', ['lsf', '-R', '--files-only', 'hp:rclone/tree'])).trim().split('\n').sort()
    assert.deepEqual(names, [...(await tree(source)).keys()].sort())
    const back = join(home, 'rclone-back')
    await run('/usr/bin/rclone', ['sync', 'hp:rclone/tree', back])
    assert.deepEqual(await tree(back), await tree(source))
    await run('/usr/bin/rclone', ['purge', 'hp:rclone'])
  })

  it('s3cmd: mb, put, ls, get, del', async () => {
    const { accessKeyId, secretAccessKey } = party.s3Key
    const host = `127.0.0.1:${party.peer(2).s3Port}`
    const config = join(home, 's3cfg')
    await writeFile(
      config,
      [
        '[default]',
        `access_key = ${accessKeyId}`,
        `secret_key = ${secretAccessKey}`,
        `host_base = ${host}`,
        `host_bucket = ${host}`,
        'use_https = False',
        'bucket_location = us-east-1',
        'signature_v2 = False',
        'multipart_chunk_size_mb = 5',
      ].join('\n'),
    )
    const s3cmd = (...args: string[]) => run('/usr/bin/s3cmd', ['-c', config, ...args])
    await s3cmd('mb', 's3://s3cmd')
    await s3cmd('put', join(source, 'big.bin'), join(source, 'a.txt'), 's3://s3cmd/in/')
    assert.match(await s3cmd('ls', 's3://s3cmd/in/'), /big\.bin/)
    await s3cmd('get', 's3://s3cmd/in/big.bin', join(home, 's3cmd-big'))
    assert.equal(
      createHash('sha256')
        .update(await readFile(join(home, 's3cmd-big')))
        .digest('hex'),
      (await tree(source)).get('big.bin'),
    )
    await s3cmd('del', 's3://s3cmd/in/big.bin', 's3://s3cmd/in/a.txt')
    await s3cmd('rb', 's3://s3cmd')
  })

  it('restic: init, backup, check --read-data, restore', async () => {
    const repo = {
      RESTIC_REPOSITORY: `s3:${endpoint(0)}/restic/repo`,
      RESTIC_PASSWORD: 'correct horse battery staple',
      RESTIC_CACHE_DIR: join(home, 'restic-cache'),
    }
    const aws = (...args: string[]) => run('/usr/bin/aws', ['--endpoint-url', endpoint(0), ...args])
    await aws('s3', 'mb', 's3://restic')
    await run('/usr/bin/restic', ['init'], repo)
    await run('/usr/bin/restic', ['backup', source], repo)
    await run('/usr/bin/restic', ['check', '--read-data'], repo)
    const target = join(home, 'restic-restore')
    await run('/usr/bin/restic', ['restore', 'latest', '--target', target], repo)
    assert.deepEqual(await tree(join(target, source)), await tree(source))
  })

  it('boto3: multipart upload_file, download_file, a paginated listing, delete_objects', async () => {
    const script = `
import boto3, hashlib, sys
from boto3.s3.transfer import TransferConfig
s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1')
s3.create_bucket(Bucket='boto')
cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
s3.upload_file(sys.argv[2], 'boto', 'big.bin', Config=cfg)
for i in range(30):
    s3.put_object(Bucket='boto', Key='many/%02d' % i, Body=b'x' * i)
keys = []
for page in s3.get_paginator('list_objects_v2').paginate(Bucket='boto', Prefix='many/', PaginationConfig={'PageSize': 7}):
    keys += [o['Key'] for o in page.get('Contents', [])]
assert keys == ['many/%02d' % i for i in range(30)], keys
s3.download_file('boto', 'big.bin', sys.argv[3], Config=cfg)
gone = s3.delete_objects(Bucket='boto', Delete={'Objects': [{'Key': k} for k in keys]})
assert len(gone['Deleted']) == 30
print(hashlib.sha256(open(sys.argv[3], 'rb').read()).hexdigest())
`
    await writeFile(join(home, 'boto.py'), script)
    const out = await run('/usr/bin/python3', [join(home, 'boto.py'), endpoint(1), join(source, 'big.bin'), join(home, 'boto-big')])
    assert.equal(out.trim(), (await tree(source)).get('big.bin'))
  })

  it('curl --aws-sigv4 in virtual-host style (BUCKET.DOMAIN)', async () => {
    const { accessKeyId, secretAccessKey } = party.s3Key
    await run('/usr/bin/aws', ['--endpoint-url', endpoint(0), 's3', 'mb', 's3://vhost'])
    const port = party.peer(2).s3Port
    const curl = (...args: string[]) =>
      run('/usr/bin/curl', [
        '-sS',
        '--fail-with-body',
        '--aws-sigv4',
        'aws:amz:us-east-1:s3',
        '--user',
        `${accessKeyId}:${secretAccessKey}`,
        '--connect-to',
        `vhost.s3.party.test:80:127.0.0.1:${port}`,
        ...args,
      ])
    await curl('-X', 'PUT', '-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', '--data-binary', 'by host name', 'http://vhost.s3.party.test/greeting.txt')
    assert.equal(await curl('-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', 'http://vhost.s3.party.test/greeting.txt'), 'by host name')
  })
})
