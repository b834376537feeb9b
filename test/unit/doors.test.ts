import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { resolveDoors } from '../../src/peer/doors.ts'

describe('door resolution', () => {
  it('expands a name through DNS into one door per address', async () => {
    const doors = await resolveDoors(['localhost:7400'], { host: '10.255.255.1', port: 9 })
    assert.ok(doors.includes('127.0.0.1:7400'), `localhost resolves to 127.0.0.1 (${doors})`)
  })

  it('never lists this peer itself, and skips names that do not resolve yet', async () => {
    const doors = await resolveDoors(['127.0.0.1:7400', '127.0.0.1:7401', 'no-such-peer.invalid:7400'], { host: '127.0.0.1', port: 7400 })
    assert.deepEqual(doors, ['127.0.0.1:7401'])
  })
})
