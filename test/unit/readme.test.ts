import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { describe, it } from 'node:test'
import { createProgram } from '../../src/cli/program.ts'
import { OPERATOR_SETTINGS } from '../../src/operator/config.ts'
import { PEER_SETTINGS } from '../../src/shared/config.ts'

const ROOT = resolve(import.meta.dirname, '../..')
const read = (path: string): Promise<string> => readFile(join(ROOT, path), 'utf8')

describe('README and docs', () => {
  it('document every peer and operator flag and environment variable with its default', async () => {
    const docs = `${await read('docs/configuration.md')}\n${await read('docs/operator.md')}`
    for (const s of [...PEER_SETTINGS, ...OPERATOR_SETTINGS]) {
      const row = docs.split('\n').find((l) => l.startsWith(`| \`${s.flag}\` | \`${s.env}\` |`))
      assert.ok(row, `the docs have a row for ${s.flag}`)
      if (s.default !== '' && !(Array.isArray(s.default) && s.default.length === 0))
        assert.ok(row.includes(JSON.stringify(s.default)), `the docs show the default of ${s.flag}`)
    }
  })

  it('list every CLI command in docs/cli.md', async () => {
    const section = await read('docs/cli.md')
    for (const cmd of createProgram().commands) {
      assert.match(
        section,
        new RegExp(`^houseparty ${cmd.name()}\\b|^houseparty [a-z|-]*\\b${cmd.name()}\\b`, 'm'),
        `houseparty ${cmd.name()} is in docs/cli.md`,
      )
    }
  })

  it('link only to files that exist', async () => {
    const pages = [
      'README.md',
      ...['architecture', 'cli', 'http-api', 'configuration', 'metrics', 'kubernetes', 'operator', 'development', 'errors', 'protocol'].map(
        (p) => `docs/${p}.md`,
      ),
    ]
    const broken: string[] = []
    for (const page of pages) {
      for (const [, target] of (await read(page)).matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target as string)) continue
        if (!existsSync(join(ROOT, dirname(page), target as string))) broken.push(`${page} → ${target}`)
      }
    }
    assert.deepEqual(broken, [])
  })
})
