import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { checkName } from '../../../src/peer/protocol/index.ts'
import { isHousePartyError } from '../../../src/shared/errors.ts'

describe('file names', () => {
  it('accepts keys with segments, spaces and any script', () => {
    for (const name of ['a', 'a/b/c.txt', 'ünïcødé/名前 x.bin', '.hidden', 'a..b', 'k'.repeat(1024), 'q?x#y']) assert.equal(checkName(name), name)
  })

  it('rejects what could escape a directory or confuse a path, with ERR_BAD_NAME', () => {
    const bad = [
      '',
      '..',
      '.',
      'a/../b',
      '../x',
      'a/./b',
      '/abs',
      'a//b',
      'trailing/',
      'nul\0byte',
      'tab\there',
      'del\x7f',
      'back\\slash',
      'k'.repeat(1025),
      'é'.repeat(513),
      '\ud800',
      42,
    ]
    for (const name of bad)
      assert.throws(
        () => checkName(name),
        (e) => isHousePartyError(e, 'ERR_BAD_NAME'),
        JSON.stringify(name),
      )
  })
})
