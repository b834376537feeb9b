import { createSocket, type Socket } from 'node:dgram'
import { lookup } from 'node:dns/promises'
import { isIPv6 } from 'node:net'
import { HousePartyError } from '../../shared/errors.ts'

/** Sends and receives raw datagrams. Injected so tests can run a party in memory. */
export interface DatagramTransport {
  start(): Promise<void>
  stop(): Promise<void>
  /** The port actually bound (useful with port 0). */
  readonly port: number
  send(to: string, data: Buffer): void
  onDatagram(handler: (data: Buffer, from: string) => void): void
}

export function splitAddress(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(address)
  const port = m ? Number(m[2]) : Number.NaN
  if (!m || m[1] === undefined || m[1] === '' || !(port >= 0 && port <= 65535)) {
    throw new HousePartyError('ERR_INVALID_ARGUMENT', `expected HOST:PORT, got ${JSON.stringify(address)}`)
  }
  return { host: m[1], port }
}

export function joinAddress(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`
}

/** The real thing: one UDP socket. Names are resolved once and cached briefly. */
export class UdpTransport implements DatagramTransport {
  readonly #host: string
  readonly #requestedPort: number
  #socket: Socket | undefined
  #handler: (data: Buffer, from: string) => void = () => {}
  readonly #resolved = new Map<string, { ip: string; until: number }>()
  readonly #onSendError: (err: Error) => void

  constructor(host: string, port: number, onSendError: (err: Error) => void = () => {}) {
    this.#host = host
    this.#requestedPort = port
    this.#onSendError = onSendError
  }

  get port(): number {
    return this.#socket?.address().port ?? this.#requestedPort
  }

  async start(): Promise<void> {
    const socket = createSocket({ type: isIPv6(this.#host) ? 'udp6' : 'udp4', reuseAddr: false })
    socket.on('message', (data, rinfo) => this.#handler(data, joinAddress(rinfo.address, rinfo.port)))
    // A send to a vanished peer can surface as an asynchronous error; never crash for it.
    socket.on('error', (err) => this.#onSendError(err))
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(this.#requestedPort, this.#host, () => {
        socket.off('error', reject)
        resolve()
      })
    })
    this.#socket = socket
  }

  async stop(): Promise<void> {
    const socket = this.#socket
    this.#socket = undefined
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()))
  }

  onDatagram(handler: (data: Buffer, from: string) => void): void {
    this.#handler = handler
  }

  send(to: string, data: Buffer): void {
    const socket = this.#socket
    if (!socket) return
    let target: { host: string; port: number }
    try {
      target = splitAddress(to)
    } catch (err) {
      this.#onSendError(err as Error)
      return
    }
    const cached = this.#resolved.get(target.host)
    if (cached && cached.until > Date.now()) {
      socket.send(data, target.port, cached.ip, (err) => err && this.#onSendError(err))
      return
    }
    lookup(target.host, { family: isIPv6(this.#host) ? 6 : 4 })
      .then(({ address }) => {
        this.#resolved.set(target.host, { ip: address, until: Date.now() + 5_000 })
        this.#socket?.send(data, target.port, address, (err) => err && this.#onSendError(err))
      })
      .catch((err: Error) => this.#onSendError(err))
  }
}

/** An in-process network for deterministic tests of the protocol logic. */
export class MemoryNetwork {
  readonly #nodes = new Map<string, MemoryTransport>()
  /** Addresses whose datagrams vanish, in and out (a frozen or dead peer). */
  readonly down = new Set<string>()
  /** Addresses whose incoming datagrams arrive this many ms late (a slow link or a busy peer). */
  readonly inboundDelayMs = new Map<string, number>()

  transport(address: string): MemoryTransport {
    const t = new MemoryTransport(this, address)
    return t
  }

  register(address: string, t: MemoryTransport): void {
    this.#nodes.set(address, t)
  }

  unregister(address: string): void {
    this.#nodes.delete(address)
  }

  deliver(from: string, to: string, data: Buffer): void {
    if (this.down.has(from) || this.down.has(to)) return
    const target = this.#nodes.get(to)
    if (!target) return
    const copy = Buffer.from(data)
    const arrive = (): void => {
      if (!this.down.has(to)) target.receive(copy, from)
    }
    const delay = this.inboundDelayMs.get(to)
    if (delay) setTimeout(arrive, delay)
    else setImmediate(arrive)
  }
}

export class MemoryTransport implements DatagramTransport {
  readonly #net: MemoryNetwork
  readonly #address: string
  #handler: (data: Buffer, from: string) => void = () => {}

  constructor(net: MemoryNetwork, address: string) {
    this.#net = net
    this.#address = address
  }

  get port(): number {
    return splitAddress(this.#address).port
  }

  async start(): Promise<void> {
    this.#net.register(this.#address, this)
  }

  async stop(): Promise<void> {
    this.#net.unregister(this.#address)
  }

  onDatagram(handler: (data: Buffer, from: string) => void): void {
    this.#handler = handler
  }

  receive(data: Buffer, from: string): void {
    this.#handler(data, from)
  }

  send(to: string, data: Buffer): void {
    this.#net.deliver(this.#address, to, data)
  }
}
