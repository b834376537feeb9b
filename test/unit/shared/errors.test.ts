import assert from 'node:assert/strict'
import { globSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { describe, it } from 'node:test'
import { ERROR_CODES, HousePartyError, toHousePartyError } from '../../../src/shared/errors.ts'

const ROOT = resolve(import.meta.dirname, '../../..')

describe('error catalogue', () => {
  it('docs/errors.md lists every code with its status, and nothing else', async () => {
    const doc = await readFile(new URL('../../../docs/errors.md', import.meta.url), 'utf8')
    const rows = [...doc.matchAll(/^\| `(ERR_[A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])])
    assert.deepEqual(new Map(rows as [string, number][]), new Map(Object.entries(ERROR_CODES).map(([code, v]) => [code, v.status])))
  })

  it('every code in the catalogue is produced somewhere in src/', () => {
    const sources = globSync('src/**/*.ts', { cwd: ROOT })
      .filter((f) => f !== 'src/shared/errors.ts')
      .map((f) => readFileSync(join(ROOT, f), 'utf8'))
      .join('\n')
    const unused = Object.keys(ERROR_CODES).filter((code) => !sources.includes(`'${code}'`))
    assert.deepEqual(unused, [])
  })

  it('errors carry code, status and JSON form; foreign errors are wrapped', () => {
    const e = new HousePartyError('ERR_BAD_NAME', 'no')
    assert.equal(e.status, 400)
    assert.deepEqual(e.toJSON(), { code: 'ERR_BAD_NAME', message: 'no' })
    assert.equal(toHousePartyError(new Error('x')).code, 'ERR_INTERNAL')
    const t = new Error('slow')
    t.name = 'TimeoutError'
    assert.equal(toHousePartyError(t).code, 'ERR_TIMEOUT')
  })
})
