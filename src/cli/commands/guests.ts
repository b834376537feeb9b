import type { Command } from 'commander'
import { HousePartyError } from '../../shared/errors.ts'
import { type PartyApi, plural, table } from '../client.ts'
import { apiFor, emit } from '../output.ts'
import { formatBytes } from '../progress.ts'
import { type TargetOptions, withTarget } from '../target.ts'

export interface GuestsReply {
  self: string | null
  status: string
  epoch: number
  guests: {
    id: string
    address: string
    apiPort: number
    since: number
    self: boolean
    incarnation?: number
    heldBytes?: number | null
    domains?: { node?: string; zone?: string; region?: string }
  }[]
}

export interface FragmentsReply {
  guest: string
  bytes: number
  fragments: { name: string; version: string; index: number; size: number; bytes: number; coding: { k: number; m: number } }[]
}

export function guests(api: PartyApi): Promise<GuestsReply> {
  return api.json<GuestsReply>('/guests')
}

export function renderGuests(reply: GuestsReply, asked: string): string {
  const rows = reply.guests.map((g) => {
    const host = g.address.replace(/:\d+$/, '')
    const where = [g.domains?.region, g.domains?.zone, g.domains?.node].filter(Boolean).join('/') || '-'
    return [g.self ? `${g.id} *` : g.id, g.address, `${host}:${g.apiPort}`, where, String(g.since), g.heldBytes == null ? '?' : formatBytes(g.heldBytes)]
  })
  const headers = ['ID', 'ADDRESS', 'API', 'REGION/ZONE/NODE', 'SINCE EPOCH', 'HOLDS']
  return `epoch ${reply.epoch}, ${plural(reply.guests.length, 'guest')} (asked ${asked}, ${reply.status})\n${table(headers, rows)}`
}

/** Resolves a guest id or a unique prefix of one; an ambiguous prefix lists what it matches. */
export async function resolveGuest(api: PartyApi, idOrPrefix: string): Promise<string> {
  const { guests: list } = await guests(api)
  const matches = list.filter((g) => g.id.startsWith(idOrPrefix.toLowerCase()))
  if (matches.length === 1) return (matches[0] as { id: string }).id
  if (matches.length === 0) throw new HousePartyError('ERR_GUEST_NOT_FOUND', `no guest ${idOrPrefix}`)
  throw new HousePartyError(
    'ERR_INVALID_ARGUMENT',
    `${idOrPrefix} matches ${matches.length} guests: ${matches.map((g) => `${g.id} (${g.address})`).join(', ')}; give more of the id`,
  )
}

export async function peerContents(api: PartyApi, id: string): Promise<FragmentsReply> {
  return api.json<FragmentsReply>(`/guests/${await resolveGuest(api, id)}/fragments`)
}

export function renderContents(reply: FragmentsReply): string {
  const rows = [...reply.fragments]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.index - b.index))
    .map((f) => [f.name, String(f.index), f.index < f.coding.k ? 'data' : 'parity', formatBytes(f.bytes), formatBytes(f.size), f.version])
  return `guest ${reply.guest}: ${plural(reply.fragments.length, 'fragment')}, ${formatBytes(reply.bytes)}\n${table(['NAME', 'INDEX', 'KIND', 'FRAGMENT', 'FILE SIZE', 'VERSION'], rows)}`
}

export function registerGuestsCommand(program: Command): void {
  withTarget(program.command('guests'))
    .description('print the guest list as one peer sees it')
    .action(async (opts: TargetOptions) => {
      const api = await apiFor(opts)
      emit(opts, await guests(api), (r) => renderGuests(r, api.target.label))
    })

  withTarget(program.command('peer-contents'))
    .description('list the fragments one guest holds')
    .argument('<id>', 'guest id (or a unique prefix)')
    .action(async (id: string, opts: TargetOptions) => {
      emit(opts, await peerContents(await apiFor(opts), id), renderContents)
    })
}
