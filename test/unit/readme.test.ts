import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { OPERATOR_SETTINGS } from '../../src/operator/config.ts'
import { PEER_SETTINGS } from '../../src/shared/config.ts'

describe('README', () => {
  it('documents every peer and operator flag and environment variable with its default', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
    for (const s of [...PEER_SETTINGS, ...OPERATOR_SETTINGS]) {
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${s.flag}\` | \`${s.env}\` |`))
      assert.ok(row, `README has a row for ${s.flag}`)
      if (s.default !== '' && !(Array.isArray(s.default) && s.default.length === 0))
        assert.ok(row.includes(JSON.stringify(s.default)), `README shows the default of ${s.flag}`)
    }
  })
})
