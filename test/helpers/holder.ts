import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chunkChecksum, fragmentDigest } from '../../src/peer/codec/index.ts'
import type { BatchedCall, Version } from '../../src/peer/protocol/index.ts'
import { FragmentStore } from '../../src/peer/store/index.ts'
import { TrackerStore } from '../../src/peer/tracker/index.ts'
import { pintRouter, type RouterOptions, type TransferEvents } from '../../src/peer/transfer/index.ts'
import { silentLogger } from '../../src/shared/logger.ts'
import { testPintServer } from './pint.ts'

/** A guest's data plane on real TCP: a real fragment store and tracker store behind the request router. */
export interface ServedHolder {
  store: FragmentStore
  trackers: TrackerStore
  /** host:port to call. */
  address: string
  /** Stops the server, closes the stores and removes their directory. */
  close(): Promise<void>
}

/** Serves a fresh holder and tracker in a temporary directory; `options` adds to the router what a test looks at. */
export async function servedHolder(
  options: Partial<Omit<RouterOptions, 'store' | 'trackers' | 'events'>> & { events?: Partial<TransferEvents> } = {},
): Promise<ServedHolder> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-holder-'))
  const store = new FragmentStore(join(dir, 'store'), silentLogger())
  await store.open()
  const trackers = new TrackerStore(join(dir, 'trackers'), silentLogger())
  await trackers.open()
  const events: TransferEvents = { received: () => undefined, sent: () => undefined, dropRefused: () => undefined, ...options.events }
  const server = testPintServer({ handler: pintRouter({ ...options, store, trackers, events }) })
  await server.listen('127.0.0.1', 0)
  return {
    store,
    trackers,
    address: `127.0.0.1:${server.port}`,
    close: async () => {
      await server.close()
      await trackers.close()
      await store.close()
      await rm(dir, { recursive: true, force: true, maxRetries: 5 })
    },
  }
}

/** A stash of `data` as fragment 0 of (`name`, `version`) in a 2+1 coding, with the chunk that follows it. */
export function stashOf(
  name: string,
  version: Version,
  data: Buffer,
): { body: Extract<BatchedCall, { op: 'stash' }>; chunk: { data: Buffer; checksum: Buffer } } {
  const checksum = chunkChecksum(data)
  const trailer = { size: data.length * 2, hash: 'a'.repeat(64), created: 1, digest: fragmentDigest([checksum.toString('hex')]) }
  const coding = { k: 2, m: 1, stripeBytes: 4 * 1024 * 1024 }
  return { body: { op: 'stash', name, version, index: 0, coding, trailer }, chunk: { data, checksum } }
}
