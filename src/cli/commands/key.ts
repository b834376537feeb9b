import type { Command } from 'commander'
import { HousePartyError } from '../../shared/errors.ts'
import { type PartyApi, plural, table } from '../client.ts'
import { apiFor, emit, note } from '../output.ts'
import { type TargetOptions, withTarget } from '../target.ts'

type Right = 'read' | 'write' | 'owner'

export interface KeyGrants {
  accessKeyId: string
  name: string
  created: number
  createBucket: boolean
  buckets: Record<string, Right[]>
}

interface RightOptions extends TargetOptions {
  read?: boolean
  write?: boolean
  owner?: boolean
  createBucket?: boolean
}

const post = (api: PartyApi, path: string, body: unknown) =>
  api.json<KeyGrants>(path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })

export function renderKeys(keys: KeyGrants[]): string {
  const rows = keys.map((k) => [
    k.accessKeyId,
    k.name,
    k.createBucket ? 'yes' : 'no',
    Object.entries(k.buckets)
      .map(([b, rights]) => `${b}:${rights.join('+')}`)
      .join(' ') || '-',
  ])
  return `${plural(keys.length, 'S3 key')}\n${table(['ACCESS KEY ID', 'NAME', 'CREATE BUCKETS', 'BUCKETS'], rows)}`
}

function rightsOf(opts: RightOptions): Right[] | undefined {
  const rights = (['read', 'write', 'owner'] as const).filter((r) => opts[r])
  return rights.length > 0 ? rights : undefined
}

/** `houseparty key create|ls|rm|allow|deny`: S3 access keys and their rights per bucket (read, write, owner). */
export function registerKeyCommands(program: Command): void {
  const key = program.command('key').description('S3 access keys: create, list, remove, and allow or deny them buckets')

  withTarget(key.command('create'))
    .description('make a new S3 key (its secret is printed once, never again)')
    .argument('<name>', 'what the key is for, e.g. "backups"')
    .option('--create-bucket', 'the key may create buckets (it owns those it makes)')
    .action(async (name: string, opts: RightOptions) => {
      const made = await (await apiFor(opts)).json<{ accessKeyId: string; secretAccessKey: string; name: string }>('/keys', {
        method: 'POST',
        body: JSON.stringify({ name, createBucket: opts.createBucket === true }),
        headers: { 'content-type': 'application/json' },
      })
      emit(opts, made, (m) => `access key ID      ${m.accessKeyId}\nsecret access key  ${m.secretAccessKey}`)
      if (!opts.json) note('Keep the secret now: the party keeps it sealed and never shows it again. Give the key buckets with: houseparty key allow')
    })

  withTarget(key.command('ls'))
    .description('list the S3 keys and their rights (never their secrets)')
    .action(async (opts: TargetOptions) => {
      const { keys } = await (await apiFor(opts)).json<{ keys: KeyGrants[] }>('/keys')
      emit(opts, keys, renderKeys)
    })

  withTarget(key.command('rm'))
    .description('remove an S3 key: requests signed with it are refused within seconds on every peer')
    .argument('<access-key-id>')
    .action(async (id: string, opts: TargetOptions) => {
      emit(opts, await (await apiFor(opts)).json(`/keys/${encodeURIComponent(id)}`, { method: 'DELETE' }), () => `removed ${id}`)
    })

  for (const [verb, allowed] of [
    ['allow', true],
    ['deny', false],
  ] as const) {
    withTarget(key.command(verb))
      .description(allowed ? 'give a key rights on a bucket (default: read and write)' : 'take rights on a bucket back from a key (default: all of them)')
      .argument('<access-key-id>')
      .argument('[bucket]')
      .option('--read', 'get, head and list')
      .option('--write', 'put, copy, delete and multipart uploads')
      .option('--owner', 'delete the bucket')
      .option('--create-bucket', allowed ? 'may create buckets' : 'may no longer create buckets')
      .action(async (id: string, bucket: string | undefined, opts: RightOptions) => {
        if (bucket === undefined && !opts.createBucket) throw new HousePartyError('ERR_INVALID_ARGUMENT', 'name a bucket, or --create-bucket')
        const rights = rightsOf(opts) ?? (allowed ? (['read', 'write'] as Right[]) : undefined)
        const body = { ...(bucket === undefined ? {} : { bucket, ...(rights ? { rights } : {}) }), ...(opts.createBucket ? { createBucket: true } : {}) }
        const changed = await post(await apiFor(opts), `/keys/${encodeURIComponent(id)}/${verb}`, body)
        emit(opts, changed, (k) => renderKeys([k]))
      })
  }
}
