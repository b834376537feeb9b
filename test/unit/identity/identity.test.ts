import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { IDENTITY_FILE, loadIdentity } from '../../../src/peer/identity/index.ts'
import { isHousePartyError } from '../../../src/shared/errors.ts'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})
const freshDir = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), 'houseparty-identity-'))
  dirs.push(d)
  return d
}

describe('peer identity', () => {
  it('is made once, saved before it is returned, and kept by every later start, which counts up', async () => {
    const dir = await freshDir()
    const first = await loadIdentity(dir)
    assert.equal(first.fresh, true)
    assert.equal(first.incarnation, 1)
    assert.match(first.id, /^[0-9a-f]{16}$/)
    const saved = JSON.parse(await readFile(join(dir, IDENTITY_FILE), 'utf8'))
    assert.deepEqual(saved, { id: first.id, incarnation: 1, created: first.created }, 'on disk before anyone uses it')
    const second = await loadIdentity(dir)
    const third = await loadIdentity(dir)
    assert.deepEqual([second.id, second.incarnation, second.fresh], [first.id, 2, false])
    assert.deepEqual([third.id, third.incarnation], [first.id, 3])
  })

  it('takes over the id an earlier version kept in peer-id', async () => {
    const dir = await freshDir()
    await writeFile(join(dir, 'peer-id'), '00000000000000ab\n')
    const identity = await loadIdentity(dir)
    assert.equal(identity.id, '00000000000000ab')
    assert.equal(identity.fresh, false)
  })

  it('refuses a damaged identity file rather than making up a new id', async () => {
    const dir = await freshDir()
    await writeFile(join(dir, IDENTITY_FILE), '{"id": "not hex"')
    await assert.rejects(loadIdentity(dir), (e: unknown) => isHousePartyError(e, 'ERR_INVALID_CONFIG') && /damaged/.test((e as Error).message))
  })
})
