import { randomBytes } from 'node:crypto'
import { open, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { HousePartyError } from '../../shared/errors.ts'
import { GuestId } from '../protocol/index.ts'
import { randomRingId } from '../ring/index.ts'

/** Where a peer keeps its identity, inside its data dir. */
export const IDENTITY_FILE = 'identity.json'
/** The file earlier versions kept the ring id in; read once, then superseded by identity.json. */
const LEGACY_ID_FILE = 'peer-id'

const IdentityFile = z.object({
  id: GuestId,
  /** How many times a process has started with this identity (this start included). */
  incarnation: z.number().int().nonnegative(),
  /** When the identity was made (ms since the epoch). */
  created: z.number().int().nonnegative(),
})

export interface Identity {
  /** The peer's place on the ring, chosen once and kept for life: across restarts, rejoins and new addresses. */
  id: GuestId
  /** This start's number: a restart counts up, so the party can tell a newer start of a guest from an older one. */
  incarnation: number
  created: number
  /** True when this start made the identity (an empty data dir). */
  fresh: boolean
}

/**
 * Loads this peer's identity from its data dir, or makes one, and counts
 * this start. The file is written and fsynced (with its directory) before
 * the identity is returned, so an id is never used before it is durable: a
 * crash right after cannot make the next start pick another id and orphan
 * the fragments this peer holds.
 */
export async function loadIdentity(dataDir: string, now = Date.now(), random: (n: number) => Buffer = randomBytes): Promise<Identity> {
  const path = join(dataDir, IDENTITY_FILE)
  const stored = await readIdentity(path)
  const legacy = stored ? undefined : await readLegacyId(join(dataDir, LEGACY_ID_FILE))
  const id = stored?.id ?? legacy ?? randomRingId(random)
  const identity = { id, incarnation: (stored?.incarnation ?? 0) + 1, created: stored?.created ?? now }
  await writeDurably(dataDir, path, `${JSON.stringify(identity)}\n`)
  return { ...identity, fresh: !stored && !legacy }
}

async function readIdentity(path: string): Promise<z.infer<typeof IdentityFile> | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new HousePartyError('ERR_INVALID_CONFIG', `cannot read this peer's identity (${path}): ${(err as Error).message}`)
  }
  try {
    return IdentityFile.parse(JSON.parse(text))
  } catch {
    // Making up a new identity would orphan every fragment this peer holds under the old one: refuse instead.
    throw new HousePartyError(
      'ERR_INVALID_CONFIG',
      `this peer's identity file ${path} is damaged; restore it, or delete it to start this data dir as a new guest (its fragments are then rebuilt elsewhere)`,
    )
  }
}

async function readLegacyId(path: string): Promise<string | undefined> {
  try {
    const id = (await readFile(path, 'utf8')).trim()
    return GuestId.safeParse(id).success ? id : undefined
  } catch {
    return undefined
  }
}

async function writeDurably(dir: string, path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  const file = await open(tmp, 'w')
  try {
    await file.writeFile(text)
    await file.sync()
  } finally {
    await file.close()
  }
  await rename(tmp, path)
  const d = await open(dir, 'r')
  try {
    await d.sync()
  } finally {
    await d.close()
  }
}
