import type { PintChannel } from './tcp.ts'

interface Kept {
  channel: PintChannel
  key: Buffer
  timer: NodeJS.Timeout
  onClose: () => void
}

export interface ConnectionPoolOptions {
  /** How long a connection may wait unused before it is closed: under the other side's idle timeout, which would cut it. */
  idleMs: number
  /** Most unused connections kept per address. */
  maxPerAddress?: number
}

/**
 * Data-plane connections kept open between calls, per address. A call on a
 * fresh connection pays a TCP handshake and a socket's setup and teardown on
 * both sides, more CPU than a tracker's watch or a small fragment itself; a
 * burst of small puts makes several calls to every guest each. Only
 * connections whose reply was read whole come back here, and a connection
 * that closes while it waits is forgotten at once.
 */
export class ConnectionPool {
  readonly #idleMs: number
  readonly #max: number
  readonly #kept = new Map<string, Kept[]>()
  #closed = false

  constructor(options: ConnectionPoolOptions) {
    this.#idleMs = options.idleMs
    this.#max = options.maxPerAddress ?? 32
  }

  /** An open, unused connection to `address` under `key`, or undefined. */
  take(address: string, key: Buffer): PintChannel | undefined {
    const list = this.#kept.get(address)
    while (list && list.length > 0) {
      const kept = list.pop() as Kept
      clearTimeout(kept.timer)
      kept.channel.socket.off('close', kept.onClose)
      if (list.length === 0) this.#kept.delete(address)
      if (kept.key !== key || !kept.channel.reusable) {
        kept.channel.destroy()
        continue
      }
      kept.channel.socket.ref()
      return kept.channel
    }
    return undefined
  }

  /** Takes back a connection whose exchange is over; closes it instead when it cannot carry another. */
  give(address: string, key: Buffer, channel: PintChannel): void {
    const list = this.#kept.get(address) ?? []
    if (this.#closed || !channel.reusable || list.length >= this.#max) {
      channel.destroy()
      return
    }
    channel.rest()
    channel.reader.shed()
    // An unused connection must not keep the process alive.
    channel.socket.unref()
    const forget = (): void => this.#forget(address, kept)
    const kept: Kept = { channel, key, timer: setTimeout(forget, this.#idleMs).unref(), onClose: forget }
    channel.socket.once('close', forget)
    list.push(kept)
    this.#kept.set(address, list)
  }

  /** How many connections wait unused. */
  get size(): number {
    let n = 0
    for (const list of this.#kept.values()) n += list.length
    return n
  }

  /** Closes every unused connection; connections given back later are closed at once. */
  close(): void {
    this.#closed = true
    for (const list of this.#kept.values()) {
      for (const kept of list) {
        clearTimeout(kept.timer)
        kept.channel.destroy()
      }
    }
    this.#kept.clear()
  }

  #forget(address: string, kept: Kept): void {
    clearTimeout(kept.timer)
    const list = this.#kept.get(address)
    const at = list?.indexOf(kept) ?? -1
    if (list && at >= 0) {
      list.splice(at, 1)
      if (list.length === 0) this.#kept.delete(address)
    }
    kept.channel.destroy()
  }
}
