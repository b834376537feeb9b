import type { FileHandle } from 'node:fs/promises'
import { HousePartyError } from '../../shared/errors.ts'
import { chunkBytes, chunkChecksum, chunkOffset } from '../codec/index.ts'
import type { Manifest } from '../protocol/index.ts'

/** Reads chunk `stripe` of a fragment into the front of `buf`; false if it is short or fails its checksum. */
export async function readChunkChecked(handle: FileHandle, manifest: Manifest, stripe: number, buf: Buffer): Promise<boolean> {
  const len = chunkBytes(manifest.size, manifest.coding, stripe)
  const { bytesRead } = await handle.read(buf, 0, len, chunkOffset(manifest.coding, stripe))
  return bytesRead === len && chunkChecksum(buf.subarray(0, len)).toString('hex') === manifest.chunks[stripe]
}

/** A held fragment open for reading, chunk by chunk; see FragmentStore.openChunks. */
export class ChunkReader {
  readonly manifest: Manifest
  readonly #handle: FileHandle

  constructor(manifest: Manifest, handle: FileHandle) {
    this.manifest = manifest
    this.#handle = handle
  }

  async read(stripe: number): Promise<Buffer> {
    const m = this.manifest
    const buf = Buffer.allocUnsafe(chunkBytes(m.size, m.coding, stripe))
    if (!(await readChunkChecked(this.#handle, m, stripe, buf))) {
      throw new HousePartyError('ERR_CHECKSUM_MISMATCH', `chunk ${stripe} of fragment ${m.index} failed its checksum on this peer's disk`)
    }
    return buf
  }

  close(): void {
    void this.#handle.close().catch(() => undefined)
  }
}
