import { type Guest, type MessageOf, type Reply, VIEW_PAGE_GUESTS, type View } from '../protocol/index.ts'
import { RESEND_MS, VIEW_PAGE_TIMEOUT_MS } from './constants.ts'
import type { Shared } from './state.ts'
import { viewDigest } from './view.ts'

interface Fetch {
  from: string
  epoch: number
  digest: string
  total: number
  guests: Guest[]
  restarts: number
}

/**
 * Catching up: a guest list travels in pages (a party of thousands does not
 * fit one datagram). A peer that learns of a newer epoch (from a ping, a
 * commit it cannot apply, a coordinator saying it was admitted) fetches the
 * whole list from whoever told it, page by page, and checks it against the
 * digest before installing it. One fetch at a time; the last address asked
 * for while one runs is fetched next.
 */
export class ViewSync {
  readonly #s: Shared
  readonly #onView: (view: View, from: string) => void
  #fetch: Fetch | undefined
  #next: string | undefined
  #served: { view: View; digest: string } | undefined

  constructor(shared: Shared, onView: (view: View, from: string) => void) {
    this.#s = shared
    this.#onView = onView
  }

  fetch(address: string): void {
    if (address === '' || address === this.#s.self.address) return
    if (this.#fetch) {
      if (this.#fetch.from !== address) this.#next = address
      return
    }
    this.#fetch = { from: address, epoch: -1, digest: '', total: 0, guests: [], restarts: 0 }
    this.#request(0)
  }

  reset(): void {
    this.#fetch = undefined
    this.#next = undefined
  }

  serve(msg: MessageOf<'viewRequest'>, from: string): void {
    const view = this.#s.view
    if (!view) return
    if (this.#served?.view !== view) this.#served = { view, digest: viewDigest(view) }
    this.#s.env.send(from, {
      type: 'viewState',
      re: msg.rid,
      epoch: view.epoch,
      digest: this.#served.digest,
      total: view.guests.length,
      offset: msg.offset,
      guests: view.guests.slice(msg.offset, msg.offset + VIEW_PAGE_GUESTS),
    })
  }

  #request(offset: number): void {
    const s = this.#s
    const fetch = this.#fetch
    if (!fetch) return
    s.requests.send(
      fetch.from,
      (rid) => ({ type: 'viewRequest', rid, offset }),
      { timeoutMs: VIEW_PAGE_TIMEOUT_MS, resendMs: RESEND_MS },
      s.now,
      (reply) => this.#page(fetch, offset, reply),
      () => this.#done(fetch),
    )
  }

  #page(fetch: Fetch, offset: number, reply: Reply): void {
    if (this.#fetch !== fetch || reply.type !== 'viewState' || reply.offset !== offset) return this.#done(fetch)
    if (offset === 0) {
      fetch.epoch = reply.epoch
      fetch.digest = reply.digest
      fetch.total = reply.total
      fetch.guests = []
    } else if (reply.epoch !== fetch.epoch || reply.digest !== fetch.digest) {
      // The list changed between pages: start over, a few times at most.
      if (++fetch.restarts > 3) return this.#done(fetch)
      return this.#request(0)
    }
    fetch.guests.push(...reply.guests)
    if (fetch.guests.length < fetch.total && reply.guests.length > 0) return this.#request(fetch.guests.length)
    const view: View = { epoch: fetch.epoch, guests: fetch.guests }
    if (fetch.total > 0 && fetch.guests.length === fetch.total && viewDigest(view) === fetch.digest) {
      this.#s.event('view_synced')
      this.#onView(view, fetch.from)
    }
    this.#done(fetch)
  }

  #done(fetch: Fetch): void {
    if (this.#fetch !== fetch) return
    this.#fetch = undefined
    const next = this.#next
    this.#next = undefined
    if (next !== undefined) this.fetch(next)
  }
}
