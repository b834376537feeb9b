import { createHash } from 'node:crypto'
import { open, readdir, rmdir, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { fragmentDigest } from '../codec/index.ts'
import type { HeldFragment, Manifest } from '../protocol/index.ts'

/** Which fragment (as writer.ts's FragmentKey, which cannot be imported here: the writer's imports lead back to this module). */
type FragmentKey = Pick<Manifest, 'name' | 'version' | 'index'>

/**
 * Where fragments live on disk and how they are keyed: a fragment file is
 * <data>/fragments/<h[0:2]>/<h>/<version>.<index>.frag, where h is the
 * sha256 of the file name, so no name becomes a path; its key in the
 * manifest table is h/version/index.
 */
export function nameHash(name: string): string {
  return createHash('sha256').update(name, 'utf8').digest('hex')
}

export function keyOf(key: FragmentKey): string {
  return `${nameHash(key.name)}/${key.version}/${key.index}`
}

/** The ring position of a key's name: the first 64 bits of its sha256, which the key already begins with (ring/ringPosition). */
export function positionOf(key: string): string {
  return key.slice(0, 16)
}

export function fragmentPath(dataDir: string, key: FragmentKey): string {
  const h = nameHash(key.name)
  return join(dataDir, 'fragments', h.slice(0, 2), h, `${key.version}.${key.index}.frag`)
}

export function heldOf(manifest: Manifest, bytes: number, stored: number): HeldFragment {
  return {
    hash: manifest.hash,
    created: manifest.created,
    stored,
    name: manifest.name,
    version: manifest.version,
    index: manifest.index,
    size: manifest.size,
    bytes,
    digest: fragmentDigest(manifest.chunks),
    coding: manifest.coding,
  }
}

export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * Removes fragment files under `root` that `keep` does not claim: a crash
 * came between their rename into place and their row's commit. `removing`
 * hears of each file before it goes, so an install of that very key can
 * wait for it. Returns how many were removed.
 */
export async function sweepLeftovers(
  root: string,
  keep: (key: string) => boolean,
  removing: (key: string, done: Promise<unknown> | undefined) => void,
  signal: AbortSignal,
): Promise<number> {
  let removed = 0
  for (const prefix of await readdir(root)) {
    for (const hash of await readdir(join(root, prefix)).catch(() => [] as string[])) {
      if (signal.aborted) return removed
      const dir = join(root, prefix, hash)
      for (const file of await readdir(dir).catch(() => [] as string[])) {
        const key = `${hash}/${file.replace(/\.frag$/, '').replace(/\.(\d+)$/, '/$1')}`
        if (file.endsWith('.frag') && keep(key)) continue
        const done = unlink(join(dir, file)).catch(() => undefined)
        removing(key, done)
        await done
        removing(key, undefined)
        removed++
      }
      await rmdir(dir).catch(() => undefined)
    }
  }
  return removed
}
