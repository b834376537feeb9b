import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import { joinAddress, splitAddress } from './net/index.ts'

/** This machine's addresses, so a peer never knocks on its own door. */
export function localAddresses(): Set<string> {
  const out = new Set<string>(['127.0.0.1', '::1', 'localhost'])
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address)
  return out
}

/** The first non-internal IPv4 address: what to advertise when bound to 0.0.0.0. */
export function primaryAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
  }
  return '127.0.0.1'
}

/**
 * Expands door addresses: a name (a Kubernetes headless Service) may resolve
 * to many peers, and each is a door. Our own address is left out.
 */
export async function resolveDoors(doors: readonly string[], self: { host: string; port: number }): Promise<string[]> {
  const local = localAddresses()
  const out = new Set<string>()
  await Promise.all(
    doors.map(async (door) => {
      const { host, port } = splitAddress(door)
      let hosts = [host]
      if (isIP(host) === 0) {
        try {
          hosts = (await lookup(host, { all: true })).map((r) => r.address)
        } catch {
          return // not resolvable yet (a Service with no ready pods): no door here
        }
      }
      for (const h of hosts) {
        if (port === self.port && (h === self.host || local.has(h))) continue
        out.add(joinAddress(h, port))
      }
    }),
  )
  return [...out]
}
