import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { open, ReplayWindow, seal } from '../../../src/peer/net/index.ts'
import { ManualClock } from '../../../src/shared/clock.ts'

const key = Buffer.from('0123456789abcdef0123456789abcdef')

describe('datagram framing', () => {
  it('round-trips a payload with its timestamp and nonce', () => {
    const nonce = randomBytes(8)
    const d = seal(key, Buffer.from('{"type":"viewRequest","rid":1}'), 1_700_000_000_123, nonce)
    const o = open(key, d)
    assert.ok(typeof o !== 'string')
    assert.equal(o.timestamp, 1_700_000_000_123)
    assert.deepEqual(o.nonce, nonce)
    assert.equal(o.payload.toString(), '{"type":"viewRequest","rid":1}')
  })

  it('encrypts the payload: the guest list never travels in clear', () => {
    const secret = '{"type":"viewState","guests":[{"address":"hp-1.hp-peers.ns.svc.cluster.local:7400"}]}'
    const d = seal(key, Buffer.from(secret), Date.now())
    assert.equal(d.includes(Buffer.from('hp-peers')), false)
    assert.equal(d.includes(Buffer.from('viewState')), false)
    // The same payload twice is two different ciphertexts (a key of its own per datagram).
    assert.notDeepEqual(seal(key, Buffer.from(secret), 1, Buffer.alloc(8, 1)).subarray(20), seal(key, Buffer.from(secret), 1, Buffer.alloc(8, 2)).subarray(20))
  })

  it('takes a plain (HMAC-only) datagram, as earlier releases send, only while migrating; under another key it is a wrong key either way', () => {
    const plain = seal(key, Buffer.from('{"a":1}'), Date.now(), randomBytes(8), false)
    assert.ok(plain.includes(Buffer.from('{"a":1}')))
    assert.equal(open(key, plain), 'plain')
    const o = open(key, plain, true)
    assert.ok(typeof o !== 'string')
    assert.equal(o.payload.toString(), '{"a":1}')
    assert.equal(open(Buffer.from('another key of sixteen+'), plain, true), 'mac')
    assert.equal(open(Buffer.from('another key of sixteen+'), plain), 'mac')
  })

  it('rejects a wrong key and any flipped bit', () => {
    const d = seal(key, Buffer.from('{"a":1}'), Date.now())
    assert.equal(open(Buffer.from('another key of sixteen+'), d), 'mac')
    for (let i = 4; i < d.length; i++) {
      const t = Buffer.from(d)
      t[i] = (t[i] ?? 0) ^ 0x01
      assert.equal(open(key, t), 'mac', `bit flip at byte ${i}`)
    }
  })

  it('names what is wrong with bad framing', () => {
    const d = seal(key, Buffer.from('{"a":1}'), Date.now())
    assert.equal(open(key, d.subarray(0, 30)), 'too_short')
    assert.equal(open(key, Buffer.alloc(70_000)), 'too_large')
    const m = Buffer.from(d)
    m[0] = 0
    assert.equal(open(key, m), 'magic')
    const v = Buffer.from(d)
    v[2] = 9
    assert.equal(open(key, v), 'version')
  })

  it('never throws on arbitrary bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        const r = open(key, Buffer.from(bytes))
        assert.ok(typeof r === 'string', 'random bytes never authenticate')
      }),
      { numRuns: 2000 },
    )
  })
})

describe('replay window', () => {
  it('accepts a nonce once, rejects it again, forgets it when it could no longer pass the age check', () => {
    const clock = new ManualClock()
    const w = new ReplayWindow(clock, 1_000)
    const n = randomBytes(8)
    assert.equal(w.check(clock.now(), n), 'ok')
    assert.equal(w.check(clock.now(), n), 'replayed')
    clock.advance(1_001)
    assert.equal(w.check(clock.now() - 1_001, n), 'stale')
    assert.equal(w.check(clock.now(), randomBytes(8)), 'ok')
    assert.equal(w.size, 1, 'the old nonce was swept')
  })

  it('rejects timestamps too far in the future', () => {
    const clock = new ManualClock()
    const w = new ReplayWindow(clock, 1_000)
    assert.equal(w.check(clock.now() + 5_000, randomBytes(8)), 'stale')
  })

  it('refuses rather than forgets when full', () => {
    const clock = new ManualClock()
    const w = new ReplayWindow(clock, 10_000, 3)
    for (let i = 0; i < 3; i++) assert.equal(w.check(clock.now(), randomBytes(8)), 'ok')
    assert.equal(w.check(clock.now(), randomBytes(8)), 'replayed')
  })
})
