import type { GuestsReply } from './commands/guests.ts'
import type { LocalParty, LocalPeer } from './local-party.ts'

interface Health {
  files: number
  degraded: number
  lost: number
}

const GUESTS_EVERY_MS = 1_000
const HEALTH_EVERY_MS = 3_000
/** A peer that ran this long before crashing starts again at once; one crashing sooner waits longer each time. */
const STABLE_MS = 60_000
const MAX_BACKOFF_MS = 30_000

/**
 * The terminal of a local party (`npm start`): one line per event. A peer
 * process that exits on its own is started again (backoff 1 s, 2 s, 4 s …
 * 30 s while it keeps crashing), and what the party does about it shows:
 * guests removed and (re)joining, files degraded and whole again.
 */
export class PartyWatch {
  readonly #party: LocalParty
  readonly #say: (line: string) => void
  readonly #timers = new Set<NodeJS.Timeout>()
  readonly #crashes = new Map<number, { count: number; startedAt: number }>()
  #guests = new Map<string, number>()
  #health: Health | undefined
  #stopped = false

  constructor(party: LocalParty, say: (line: string) => void) {
    this.#party = party
    this.#say = say
  }

  start(initial: GuestsReply): void {
    this.#guests = new Map(initial.guests.map((g) => [g.id, g.incarnation ?? 0]))
    for (const p of this.#party.peers) this.#supervise(p)
    this.#every(GUESTS_EVERY_MS, () => this.#pollGuests())
    this.#every(HEALTH_EVERY_MS, () => this.#pollHealth())
  }

  stop(): void {
    this.#stopped = true
    for (const t of this.#timers) clearTimeout(t)
  }

  #every(ms: number, fn: () => Promise<void>): void {
    const tick = (): void => {
      const t = setTimeout(() => {
        this.#timers.delete(t)
        void fn()
          .catch(() => undefined)
          .finally(() => {
            if (!this.#stopped) tick()
          })
      }, ms)
      this.#timers.add(t)
    }
    tick()
  }

  #peerOf(address: string): string {
    const p = this.#party.peers.find((x) => address.endsWith(`:${x.port}`))
    return p ? `peer ${p.index}` : address
  }

  #supervise(p: LocalPeer): void {
    const proc = p.process
    if (!proc) return
    const startedAt = Date.now()
    proc.once('exit', (code, signal) => {
      if (this.#stopped) return
      const record = this.#crashes.get(p.index) ?? { count: 0, startedAt }
      record.count = Date.now() - startedAt >= STABLE_MS ? 1 : record.count + 1
      this.#crashes.set(p.index, record)
      const delay = Math.min(MAX_BACKOFF_MS, 1_000 * 2 ** (record.count - 1))
      this.#say(`peer ${p.index} (pid ${proc.pid}) exited (${signal ?? `code ${code}`}); starting it again in ${delay / 1000} s (log: ${p.logFile})`)
      const t = setTimeout(() => {
        this.#timers.delete(t)
        if (this.#stopped) return
        const doors = this.#party.peers.filter((x) => x.index !== p.index && this.#party.isRunning(x.index)).map((x) => x.index)
        this.#party.start(p.index, doors).then(
          (again) => {
            this.#say(`peer ${p.index} started again (pid ${again.process?.pid}) on its data dir`)
            this.#supervise(again)
          },
          (err: Error) => this.#say(`peer ${p.index} could not be started again: ${err.message}`),
        )
      }, delay)
      this.#timers.add(t)
    })
  }

  /** Asks the first running peer that answers. */
  async #ask<T>(path: string): Promise<T | undefined> {
    for (const p of this.#party.peers) {
      if (!this.#party.isRunning(p.index)) continue
      const api = this.#party.api(p.index)
      try {
        return await api.json<T>(path, { signal: AbortSignal.timeout(2_000) })
      } catch {}
    }
    return undefined
  }

  async #pollGuests(): Promise<void> {
    const reply = await this.#ask<GuestsReply>('/guests')
    if (reply?.status !== 'guest') return
    const now = new Map(reply.guests.map((g) => [g.id, g.incarnation ?? 0]))
    for (const [id] of this.#guests) {
      if (!now.has(id)) this.#say(`guest ${id.slice(0, 8)} removed from the party (epoch ${reply.epoch})`)
    }
    for (const g of reply.guests) {
      const before = this.#guests.get(g.id)
      if (before === undefined) this.#say(`guest ${g.id.slice(0, 8)} (${this.#peerOf(g.address)}) joined (epoch ${reply.epoch})`)
      else if (before !== (g.incarnation ?? 0)) this.#say(`guest ${g.id.slice(0, 8)} (${this.#peerOf(g.address)}) is back, start #${g.incarnation}`)
    }
    this.#guests = now
  }

  async #pollHealth(): Promise<void> {
    const h = await this.#ask<Health>('/health/party')
    if (!h) return
    const was = this.#health
    this.#health = h
    if (!was || (was.degraded === h.degraded && was.lost === h.lost)) return
    if (h.lost > was.lost) this.#say(`${h.lost} of ${h.files} files LOST (more than m fragments gone)`)
    if (h.degraded > 0 && h.degraded !== was.degraded) this.#say(`${h.degraded} of ${h.files} files below full redundancy; the trackers are rebuilding them`)
    if (h.degraded === 0 && h.lost === 0) this.#say(`all ${h.files} files at full redundancy again`)
  }
}
