import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { MIN_NODE, missingPeerFlags, PEER_V8_FLAGS, supportedNode } from '../../../src/shared/runtime.ts'

describe('peer V8 flags', () => {
  it('the houseparty shebang starts node with every one of them', async () => {
    const [shebang] = (await readFile(new URL('../../../src/cli/main.ts', import.meta.url), 'utf8')).split('\n')
    assert.match(shebang ?? '', /^#!\/usr\/bin\/env -S node /)
    assert.deepEqual(missingPeerFlags(shebang?.split(' ').slice(3)), [])
  })

  it('names the flags a process lacks, whatever value or spelling it gave', () => {
    assert.deepEqual(missingPeerFlags([]), [...PEER_V8_FLAGS])
    assert.deepEqual(missingPeerFlags(['--initial-heap-size=512']), ['--max-semi-space-size=2'])
    assert.deepEqual(missingPeerFlags(['--initial-heap-size=512', '--max-semi-space-size=8']), [])
    assert.deepEqual(missingPeerFlags(['--initial_heap_size=64', '--max_semi_space_size=8', '--enable-source-maps']), [])
  })
})

describe('the oldest Node.js', () => {
  it('is the one package.json "engines" names, and the one node:sqlite needs', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } }
    assert.equal(pkg.engines.node, `>=${MIN_NODE}`)
    assert.deepEqual(['20.19.0', '22.12.0', '22.13.0', '23.0.0', 'v24.1.0'].map(supportedNode), [false, false, true, true, true])
  })
})
