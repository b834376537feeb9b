import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { MESSAGE_TYPES, parseMessage } from '../../../src/peer/protocol/index.ts'

const guest = { id: '0123456789abcdef', address: '127.0.0.1:7400', apiPort: 7480, since: 1 }

describe('protocol messages', () => {
  it('accepts well-formed messages of every kind used on the wire', () => {
    assert.ok(parseMessage({ type: 'ping', rid: 1, from: guest.id, epoch: 3 }))
    assert.ok(parseMessage({ type: 'welcome', re: 1, view: { epoch: 1, guests: [guest] } }))
    assert.ok(parseMessage({ type: 'join', rid: 2, guest: { id: guest.id, address: guest.address, apiPort: 1 }, replyTo: '10.0.0.1:7400', hops: 0 }))
    assert.ok(parseMessage({ type: 'join', rid: 2, guest: { id: guest.id, address: 'hp-0.hp.default.svc:7400', apiPort: 1 }, replyTo: '[::1]:7400', hops: 0 }))
    assert.ok(MESSAGE_TYPES.length >= 20)
  })

  it('rejects unknown types, extra fields, bad ids and bad addresses', () => {
    assert.equal(parseMessage({ type: 'pwn', rid: 1 }), undefined)
    assert.equal(parseMessage({ type: 'ping', rid: 1, from: guest.id, epoch: 3, extra: true }), undefined)
    assert.equal(parseMessage({ type: 'ping', rid: 1, from: 'ABC', epoch: 3 }), undefined)
    assert.equal(parseMessage({ type: 'knock', rid: 1, address: 'no port' }), undefined)
    assert.equal(parseMessage({ type: 'knock', rid: 1, address: '../../etc:1' }), undefined)
    assert.equal(parseMessage({ type: 'ping', rid: -1, from: guest.id, epoch: 3 }), undefined)
    assert.equal(parseMessage(null), undefined)
    assert.equal(parseMessage('ping'), undefined)
  })

  it('never throws on arbitrary JSON (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => void parseMessage(v)),
      { numRuns: 1000 },
    )
  })
})
