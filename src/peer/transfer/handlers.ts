import { HousePartyError } from '../../shared/errors.ts'
import { shardBytes } from '../codec/index.ts'
import type { PintChannel, StashChunk } from '../net/index.ts'
import { type BatchedCall, HoldTrailer, type Manifest, type PintReply, type PintRequest } from '../protocol/index.ts'
import { ChunkBuffers, type FragmentStore } from '../store/index.ts'

type Req<T extends PintRequest['op']> = Extract<PintRequest, { op: T }>
type StashCall = Extract<BatchedCall, { op: 'stash' }>

export interface TransferEvents {
  received(bytes: number, seconds: number): void
  sent(bytes: number, seconds: number): void
  /** A drop was refused: the newest record counts on the very copy it would delete. */
  dropRefused(): void
}

/** The fragments a drop asks for: one version of a file, all its indices or one. */
export type DropQuery = Pick<Req<'drop'>, 'name' | 'version' | 'index'>

/** holdMyPint, receiving side: verify every chunk, then the trailer, then make the fragment durable. */
export async function serveHold(req: Req<'hold'>, channel: PintChannel, store: FragmentStore, events: TransferEvents): Promise<void> {
  const started = performance.now()
  const writer = await store.beginWrite({ name: req.name, version: req.version, index: req.index }, req.coding)
  try {
    await channel.reply({ ok: true, ready: true })
    const maxChunk = shardBytes(req.coding.stripeBytes, req.coding.k)
    for (;;) {
      const chunk = await channel.readChunk(maxChunk, (length) => writer.buffer(length))
      if (!chunk) break
      await writer.append(chunk.data, chunk.digest)
    }
    const trailer = HoldTrailer.parse(await channel.readFrame(`t${channel.nonce}`, 64 * 1024))
    const held = await writer.commit(trailer)
    events.received(held.bytes, (performance.now() - started) / 1000)
    await channel.reply({ ok: true, digest: held.digest, bytes: held.bytes })
  } catch (err) {
    await writer.abort()
    throw err
  }
}

/** holdMyPint for a small fragment sent whole with its request: kept in the holder's table, answered once its row is durable. */
export async function serveStash(req: Req<'stash'>, channel: PintChannel, store: FragmentStore, events: TransferEvents): Promise<void> {
  const chunk = await readStashChunk(req, channel)
  await channel.reply(await stashWhole(req, chunk, store, events))
}

/** A stash's one chunk, read off the connection (none for an empty file); longer than `maxBytes`, the request fails. */
export async function readStashChunk(req: StashCall, channel: PintChannel, maxBytes = Number.POSITIVE_INFINITY): Promise<StashChunk> {
  const limit = Math.min(shardBytes(req.coding.stripeBytes, req.coding.k), maxBytes)
  const chunk = await channel.readChunk(limit, (length) => Buffer.allocUnsafe(length))
  return { data: chunk?.data ?? Buffer.alloc(0), checksum: chunk?.digest }
}

/** Keeps a stashed fragment; the reply once its row is durable. */
export async function stashWhole(req: StashCall, chunk: StashChunk, store: FragmentStore, events: TransferEvents): Promise<PintReply<'stash'>> {
  const started = performance.now()
  const key = { name: req.name, version: req.version, index: req.index }
  const held = await store.stash(key, req.coding, req.trailer, chunk.data, chunk.checksum)
  events.received(held.bytes, (performance.now() - started) / 1000)
  return { ok: true, digest: held.digest, bytes: held.bytes }
}

/** What fetches read chunks into, shared by every fetch this peer serves. */
const SERVED_CHUNKS = new ChunkBuffers()

export async function serveFetch(req: Req<'fetch'>, channel: PintChannel, store: FragmentStore, events: TransferEvents): Promise<void> {
  const started = performance.now()
  const { manifest, bytes, stream } = await store.openRead(req, req.fromChunk, SERVED_CHUNKS)
  try {
    await channel.reply({ ok: true, manifest, bytes })
    for await (const buf of stream) await channel.write(buf as Buffer, () => SERVED_CHUNKS.give(buf as Buffer))
    events.sent(bytes, (performance.now() - started) / 1000)
  } finally {
    stream.destroy()
  }
}

/**
 * A fragment read whole into one buffer, for a reply that carries it (a batch's fetch, a where). It takes its
 * bytes from `left` before it is read (the calls of a batch are served at once and share what a reply may
 * carry); one larger than what is left, or than `maxBytes`, is refused.
 */
export async function readWhole(
  store: FragmentStore,
  key: { name: string; version: string; index: number },
  left: { room: number },
  events: TransferEvents,
  maxBytes = Number.POSITIVE_INFINITY,
): Promise<{ manifest: Manifest; data: Buffer }> {
  const started = performance.now()
  const { manifest, bytes, stream } = await store.openRead(key, 0)
  try {
    const room = Math.min(left.room, maxBytes)
    if (bytes > room) throw new HousePartyError('ERR_PROTOCOL', `a fragment of ${bytes} bytes does not fit in the ${room} bytes left for this reply`)
    left.room -= bytes
    const parts: Buffer[] = []
    for await (const part of stream) parts.push(part as Buffer)
    const data = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts)
    if (data.length !== bytes) throw new HousePartyError('ERR_INTERNAL', `read ${data.length} bytes of a ${bytes}-byte fragment`)
    events.sent(bytes, (performance.now() - started) / 1000)
    return { manifest, data }
  } finally {
    stream.destroy()
  }
}

/**
 * Deletes the fragments a drop asks for, unless `needed` says the newest record counts on this very copy: drops are
 * planned from records, and a planner whose records missed changes (a peer voted out while it was paused) would
 * otherwise delete a copy the party made meanwhile.
 */
export async function serveDrop(
  req: Req<'drop'>,
  channel: PintChannel,
  store: FragmentStore,
  events: TransferEvents,
  needed?: (query: DropQuery) => Promise<boolean>,
): Promise<void> {
  const keep = needed !== undefined && (await needed(req))
  if (keep) events.dropRefused()
  const dropped = keep ? 0 : await store.drop(req.name, req.version, req.index, req.storedBy)
  await channel.reply({ ok: true, dropped })
}

export async function serveInventory(req: Req<'inventory'>, channel: PintChannel, store: FragmentStore): Promise<void> {
  const fragments = req.arc ? store.listIn(req.arc, req.select ?? [], req.parts) : store.list()
  await channel.reply({ ok: true, fragments })
}

export async function serveDigests(req: Req<'digests'>, channel: PintChannel, store: FragmentStore): Promise<void> {
  const parts = store.digestsIn(req.arc, req.parts).encode()
  await channel.reply({ ok: true, parts, bytes: store.bytes, fragments: store.count })
}
