import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { MESSAGE_TYPES, parseMessage } from '../../../src/peer/protocol/index.ts'

const guest = { id: '0123456789abcdef', address: '127.0.0.1:7400', apiPort: 7480, incarnation: 1, since: 1 }
const { since: _, ...newcomer } = guest

describe('protocol messages', () => {
  it('accepts well-formed messages of every kind used on the wire', () => {
    assert.ok(parseMessage({ type: 'ping', rid: 1, from: guest.id, epoch: 3, lag: 12, held: 1024 }))
    assert.ok(parseMessage({ type: 'welcome', re: 1, from: guest.id, epoch: 1, guests: 3, coordinator: guest.address }))
    assert.ok(parseMessage({ type: 'join', rid: 2, guest: newcomer, resumed: false, replyTo: '10.0.0.1:7400', hops: 0 }))
    assert.ok(
      parseMessage({ type: 'join', rid: 2, guest: { ...newcomer, address: 'hp-0.hp.default.svc:7400' }, resumed: true, replyTo: '[::1]:7400', hops: 0 }),
    )
    const change = { remove: [{ id: guest.id, reason: 'dead' }], add: [newcomer], update: [] }
    const ballot = { round: 4, by: guest.id }
    assert.ok(parseMessage({ type: 'prepare', rid: 3, from: guest.id, baseEpoch: 7, ballot, change }))
    assert.ok(parseMessage({ type: 'promise', re: 3, from: guest.id, baseEpoch: 7, ballot, accepted: { ballot, change }, alive: [guest.id] }))
    assert.ok(parseMessage({ type: 'accept', rid: 4, from: guest.id, baseEpoch: 7, ballot, change, digest: '0123456789abcdef' }))
    assert.ok(parseMessage({ type: 'viewState', re: 5, epoch: 8, digest: '0123456789abcdef', total: 1, offset: 0, guests: [guest] }))
    assert.ok(MESSAGE_TYPES.length >= 20)
  })

  it('rejects unknown types, extra fields, bad ids and bad addresses', () => {
    assert.equal(parseMessage({ type: 'pwn', rid: 1 }), undefined)
    assert.equal(parseMessage({ type: 'ping', rid: 1, from: guest.id, epoch: 3, lag: 0, extra: true }), undefined)
    assert.equal(parseMessage({ type: 'ping', rid: 1, from: 'ABC', epoch: 3, lag: 0 }), undefined)
    assert.equal(parseMessage({ type: 'viewState', re: 5, epoch: 8, digest: 'x', total: 1, offset: 0, guests: [guest] }), undefined)
    assert.equal(parseMessage({ type: 'knock', rid: 1, address: 'no port' }), undefined)
    assert.equal(parseMessage({ type: 'knock', rid: 1, address: '../../etc:1' }), undefined)
    assert.equal(parseMessage({ type: 'ping', rid: -1, from: guest.id, epoch: 3, lag: 0 }), undefined)
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
