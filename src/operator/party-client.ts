import { createHash } from 'node:crypto'
import { rootCertificates } from 'node:tls'
import { Agent } from 'undici'
import { HousePartyError } from '../shared/errors.ts'
import type { PartySeen } from './party.ts'

const TIMEOUT_MS = 10_000

/**
 * The party's HTTP API as the operator uses it, through the client Service
 * (any peer answers for the whole party).
 */
export class PartyClient {
  readonly base: string
  readonly #token: string | undefined
  readonly #dispatcher: Agent | undefined

  /** `tls`: for an https base, the CA to trust besides the system's, and the name the certificate must carry. */
  constructor(base: string, token?: string, tls?: { ca?: string | undefined; servername: string }) {
    this.base = base.replace(/\/$/, '')
    this.#token = token
    if (tls) this.#dispatcher = new Agent({ connect: { ca: tls.ca ? [...rootCertificates, tls.ca] : undefined, servername: tls.servername } })
  }

  async #get(path: string, timeoutMs = TIMEOUT_MS): Promise<Response> {
    const headers: Record<string, string> = this.#token ? { authorization: `Bearer ${this.#token}` } : {}
    const init = { headers, signal: AbortSignal.timeout(timeoutMs), ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}) }
    const res = await fetch(`${this.base}${path}`, init as RequestInit).catch((err: Error) => {
      throw new HousePartyError('ERR_PARTY_UNREACHABLE', `${this.base}${path}: ${err.cause instanceof Error ? err.cause.message : err.message}`)
    })
    return res
  }

  async #json<T>(path: string): Promise<T> {
    const res = await this.#get(path)
    if (!res.ok) throw new HousePartyError('ERR_PARTY_UNREACHABLE', `${this.base}${path}: ${res.status} ${(await res.text()).slice(0, 200)}`)
    return (await res.json()) as T
  }

  /** The guest list and file health, or undefined when the party does not answer (yet). */
  async observe(): Promise<PartySeen | undefined> {
    try {
      const [guests, health] = await Promise.all([
        this.#json<{ guests: { id: string; address: string; incarnation: number; heldBytes?: number | null }[] }>('/guests'),
        this.#json<{ files: number; degraded: number; lost: number; answered: number }>('/health/party'),
      ])
      return {
        guests: guests.guests.map((g) => ({ id: g.id, address: g.address, incarnation: g.incarnation, heldBytes: g.heldBytes ?? null })),
        files: health.files,
        degraded: health.degraded,
        lost: health.lost,
        answered: health.answered,
      }
    } catch {
      return undefined
    }
  }

  /**
   * Reads back up to `count` files (spread over the listing) and compares each
   * with the hash the party recorded. Returns how many were checked and which
   * could not be read or came back different.
   */
  async checkSample(count: number): Promise<{ checked: number; unreadable: string[] }> {
    if (count <= 0) return { checked: 0, unreadable: [] }
    // The first page (the listing's largest) is the sample's pool: a check must not read a million names.
    const listing = await this.#json<{ files: { name: string; hash: string }[] }>('/files?limit=10000')
    const files = listing.files
    const step = Math.max(1, files.length / count)
    const sample = Array.from({ length: Math.min(count, files.length) }, (_, i) => files[Math.floor(i * step)] as { name: string; hash: string })
    const unreadable: string[] = []
    for (const f of sample) {
      const path = `/files/${f.name.split('/').map(encodeURIComponent).join('/')}`
      try {
        const res = await this.#get(path, 120_000)
        const hash = createHash('sha256')
        if (res.body) for await (const chunk of res.body) hash.update(chunk as Uint8Array)
        if (!res.ok || hash.digest('hex') !== f.hash) unreadable.push(f.name)
      } catch {
        unreadable.push(f.name)
      }
    }
    return { checked: sample.length, unreadable }
  }
}
