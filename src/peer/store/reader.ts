import type { FileHandle } from 'node:fs/promises'
import { HousePartyError } from '../../shared/errors.ts'
import { chunkBytes, chunkChecksum, chunkOffset } from '../codec/index.ts'
import type { Manifest } from '../protocol/index.ts'

/** Where a held fragment's bytes are read from: its file, or the row that keeps a small fragment inline. */
export interface FragmentBytes {
  /** Reads up to `length` bytes at `position` into the front of `buf`; how many were read. */
  read(buf: Buffer, length: number, position: number): Promise<number>
  size(): Promise<number>
  close(): Promise<void>
}

export function fileBytes(handle: FileHandle): FragmentBytes {
  return {
    read: async (buf, length, position) => (await handle.read(buf, 0, length, position)).bytesRead,
    size: async () => (await handle.stat()).size,
    close: () => handle.close(),
  }
}

export function memoryBytes(data: Buffer): FragmentBytes {
  return {
    read: async (buf, length, position) => data.copy(buf, 0, Math.min(position, data.length), Math.min(position + length, data.length)),
    size: async () => data.length,
    close: async () => undefined,
  }
}

/** Reads chunk `stripe` of a fragment into the front of `buf`; false if it is short or fails its checksum. */
export async function readChunkChecked(bytes: FragmentBytes, manifest: Manifest, stripe: number, buf: Buffer): Promise<boolean> {
  const len = chunkBytes(manifest.size, manifest.coding, stripe)
  const read = await bytes.read(buf, len, chunkOffset(manifest.coding, stripe))
  return read === len && chunkChecksum(buf.subarray(0, len)).toString('hex') === manifest.chunks[stripe]
}

/** A held fragment open for reading, chunk by chunk; see FragmentStore.openChunks. */
export class ChunkReader {
  readonly manifest: Manifest
  readonly #bytes: FragmentBytes

  constructor(manifest: Manifest, bytes: FragmentBytes) {
    this.manifest = manifest
    this.#bytes = bytes
  }

  async read(stripe: number): Promise<Buffer> {
    const m = this.manifest
    const buf = Buffer.allocUnsafe(chunkBytes(m.size, m.coding, stripe))
    if (!(await readChunkChecked(this.#bytes, m, stripe, buf))) {
      throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `chunk ${stripe} of fragment ${m.index} failed its checksum on this peer's disk`)
    }
    return buf
  }

  close(): void {
    void this.#bytes.close().catch(() => undefined)
  }
}
