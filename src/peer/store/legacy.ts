import { readdir, readFile, rmdir, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../../shared/logger.ts'
import { fragmentBytes, stripeCount } from '../codec/index.ts'
import { type HeldFragment, Manifest } from '../protocol/index.ts'
import type { ManifestTable } from './manifest-table.ts'

/** Manifests imported per transaction: bounds the memory an import of a large data dir holds. */
const IMPORT_BATCH = 1000

/**
 * Converts a data dir of the earlier layout, where each fragment had its
 * manifest in a JSON file beside it, on the first start of a peer that keeps
 * manifests in fragments.db. Each manifest that matches its fragment (the
 * right place, the right size) becomes a row; a fragment without a manifest,
 * or one that does not match, was cut short by a crash and is removed, as
 * the earlier layout's start did. The JSON files go only once their rows are
 * committed, so an import cut short is simply done again. Returns how many
 * leftovers it removed.
 */
export async function importManifestFiles(
  root: string,
  table: ManifestTable,
  place: { pathOf: (m: Manifest) => string; keyOf: (m: Manifest) => string; heldOf: (m: Manifest, bytes: number, stored: number) => HeldFragment },
  log: Logger,
): Promise<number> {
  let cleaned = 0
  let batch: { key: string; manifest: Manifest; held: HeldFragment; file: string }[] = []
  const flush = async (): Promise<void> => {
    const rows = batch
    batch = []
    await table.transaction(() => {
      for (const r of rows) table.insert(r.key, r.manifest, r.held)
    })
    for (const r of rows) await unlink(r.file).catch(() => undefined)
  }
  for (const prefix of await readdir(root)) {
    for (const hash of await readdir(join(root, prefix)).catch(() => [])) {
      const dir = join(root, prefix, hash)
      const files = await readdir(dir).catch(() => [] as string[])
      const manifests = new Set(files.filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)))
      for (const file of files.filter((f) => f.endsWith('.frag') && !manifests.has(f.slice(0, -5)))) {
        await unlink(join(dir, file)).catch(() => undefined)
        cleaned++
      }
      for (const base of manifests) {
        const file = join(dir, `${base}.json`)
        const found = await readManifest(file, join(dir, `${base}.frag`), place.pathOf, log)
        if (found)
          batch.push({ key: place.keyOf(found.manifest), manifest: found.manifest, held: place.heldOf(found.manifest, found.bytes, found.stored), file })
        else {
          await unlink(file).catch(() => undefined)
          await unlink(join(dir, `${base}.frag`)).catch(() => undefined)
          cleaned++
        }
        if (batch.length >= IMPORT_BATCH) await flush()
      }
      await rmdir(dir).catch(() => undefined)
    }
  }
  await flush()
  table.setMeta('layout', 'table')
  if (cleaned > 0) log.warn({ cleaned }, 'removed incomplete fragments left by a crash')
  return cleaned
}

async function readManifest(
  file: string,
  fragment: string,
  pathOf: (m: Manifest) => string,
  log: Logger,
): Promise<{ manifest: Manifest; bytes: number; stored: number } | undefined> {
  try {
    const manifest = Manifest.parse(JSON.parse(await readFile(file, 'utf8')))
    const expected = fragmentBytes(manifest.size, manifest.coding)
    const st = await stat(fragment)
    if (st.size !== expected || manifest.chunks.length !== stripeCount(manifest.size, manifest.coding)) return undefined
    if (pathOf(manifest) !== fragment) return undefined
    return { manifest, bytes: expected, stored: Math.trunc(st.mtimeMs) }
  } catch (err) {
    log.warn({ err: (err as Error).message, file }, 'unreadable fragment manifest')
    return undefined
  }
}
