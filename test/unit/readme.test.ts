import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { createProgram } from '../../src/cli/program.ts'
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

  it('lists every CLI command in its CLI section', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
    const section = readme.slice(readme.indexOf('## CLI'), readme.indexOf('## HTTP API'))
    for (const cmd of createProgram().commands) {
      assert.match(
        section,
        new RegExp(`^houseparty ${cmd.name()}\\b|^houseparty [a-z|-]*\\b${cmd.name()}\\b`, 'm'),
        `houseparty ${cmd.name()} is in the README`,
      )
    }
  })
})
