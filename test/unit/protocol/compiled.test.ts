import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { z } from 'zod'
import { checkOf, PageReply, PintReplies, PintRequest } from '../../../src/peer/protocol/index.ts'

const record = {
  name: 'photos/2026/a.jpg',
  version: '1733380000000-abcdef12',
  revision: 0,
  deleted: false,
  size: 4000,
  hash: 'a'.repeat(64),
  created: 1733380000000,
  k: 2,
  m: 1,
  holders: [
    [0, 'ab'.repeat(8)],
    [1, 'cd'.repeat(8)],
  ],
}
const page = (r: unknown) => ({ ok: true, records: [r], prefixes: ['photos/'], truncated: false })

/** Each a change to one field of a good record: the zod schema's verdict on it is the reference. */
const variants: [string, unknown][] = [
  ['as sent', record],
  ['a tombstone (no hash)', { ...record, deleted: true, hash: '' }],
  ['no version', { ...record, version: undefined }],
  ['a version out of shape', { ...record, version: '2026-01-01' }],
  ['a fractional size', { ...record, size: 1.5 }],
  ['a negative revision', { ...record, revision: -1 }],
  ['a short hash', { ...record, hash: 'abc' }],
  ['an uppercase holder', { ...record, holders: [[0, 'AB'.repeat(8)]] }],
  ['a holder without its index', { ...record, holders: [['ab'.repeat(8)]] }],
  ['an index out of range', { ...record, holders: [[128, 'ab'.repeat(8)]] }],
  ['an empty name', { ...record, name: '' }],
  ['k of zero', { ...record, k: 0 }],
  ['deleted as a string', { ...record, deleted: 'no' }],
  ['not an object', 'photos/a.jpg'],
]

/** Brief entries ([name, version, revision, deleted]), good and bad. */
const briefs: [string, unknown][] = [
  ['as sent', ['photos/b.jpg', record.version, 3, false]],
  ['a tombstone', ['photos/b.jpg', record.version, 0, true]],
  ['one element short', ['photos/b.jpg', record.version, 3]],
  ['one element too many', ['photos/b.jpg', record.version, 3, false, 'x']],
  ['deleted as a number', ['photos/b.jpg', record.version, 3, 0]],
  ['a version out of shape', ['photos/b.jpg', 'v1', 3, false]],
  ['an empty name', ['', record.version, 3, false]],
  ['an object', { name: 'photos/b.jpg' }],
]

describe('a compiled validator', () => {
  for (const [label, r] of variants) {
    it(`agrees with its zod schema on a page record: ${label}`, () => {
      assert.equal(PageReply.safeParse(page(r)).success, PintReplies.page.safeParse(page(r)).success)
    })
  }

  for (const [label, b] of briefs) {
    it(`agrees with its zod schema on a brief entry: ${label}`, () => {
      const reply = { ...page(record), brief: [b] }
      assert.equal(PageReply.safeParse(reply).success, PintReplies.page.safeParse(reply).success)
    })
  }

  it('takes a page without brief entries (a guest of an earlier release)', () => {
    assert.equal(PageReply.safeParse(page(record)).success, true)
  })

  it('says where a message fails', () => {
    const result = PageReply.safeParse(page({ ...record, hash: 'abc' }))
    assert.equal(result.success, false)
    assert.match(result.error?.issues[0]?.message ?? '', /\/records\/0\/hash/)
  })

  it('rejects a page with too many records, as the schema bounds it', () => {
    const big = { ok: true, records: Array.from({ length: 10_001 }, () => record), prefixes: [], truncated: true }
    assert.equal(PageReply.safeParse(big).success, false)
    assert.equal(PintReplies.page.safeParse(big).success, false)
  })
})

const fileRecord = {
  name: 's/7/12345',
  version: record.version,
  revision: 0,
  deleted: false,
  size: 4000,
  hash: 'a'.repeat(64),
  created: 1733380000000,
  coding: { k: 2, m: 1, stripeBytes: 1048576 },
  fragments: [0, 1, 2].map((index) => ({ index, holder: 'ab'.repeat(8), digest: 'b'.repeat(64) })),
}
const base = { v: 1, ts: 1733380000000, nonce: '0123456789abcdef' }
const stash = {
  op: 'stash',
  name: 's/1',
  version: record.version,
  index: 1,
  coding: fileRecord.coding,
  trailer: { size: 4000, hash: 'a'.repeat(64), created: 1, digest: 'c'.repeat(64) },
}
const batch = (...calls: unknown[]) => ({ ...base, op: 'batch', calls })

/** Requests a peer may be sent, good and bad: zod's verdict on each is the reference. */
const requests: [string, unknown][] = [
  ['a batch of a put', batch(stash, { op: 'where', name: 's/2', intent: record.version }, { op: 'watch', record: fileRecord })],
  ['a watch of a tombstone', { ...base, op: 'watch', record: { ...fileRecord, deleted: true, hash: '' } }],
  ['a page', { ...base, op: 'page', prefix: 's/', delimiter: '/', after: '', skip: false, limit: 1000 }],
  ['an unknown op', { ...base, op: 'party' }],
  ['an unknown op in a batch', batch({ op: 'party' })],
  ['a call a batch may not carry', batch({ op: 'drop', name: 's/1', version: record.version })],
  ['an empty batch', batch()],
  ['a stash without its trailer', batch({ ...stash, trailer: undefined })],
  ['a watch of a record without fragments', { ...base, op: 'watch', record: { ...fileRecord, fragments: undefined } }],
  ['a nonce out of shape', { ...base, nonce: 'xyz', op: 'where', name: 's/1' }],
  ['no op', { ...base, name: 's/1' }],
  ['null', null],
]

describe('the compiled check of every request', () => {
  const check = checkOf(PintRequest)
  for (const [label, request] of requests) {
    it(`agrees with zod: ${label}`, () => {
      assert.equal(check(structuredClone(request)).success, PintRequest.safeParse(request).success)
    })
  }

  it('drops the keys a schema does not name, as zod does, and keeps user metadata', () => {
    const meta = { contentType: 'text/plain', user: { colour: 'blue' }, extra: 1 }
    const sent = batch({ ...stash, extra: 1 }, { op: 'watch', record: { ...fileRecord, meta, extra: 2 }, extra: 3 })
    const checked = check({ ...structuredClone(sent), extra: 4 })
    assert.ok(checked.success)
    assert.deepEqual(checked.data, PintRequest.parse(sent))
    const watch = (checked.data as { calls: { record?: { meta?: unknown } }[] }).calls[1]
    assert.deepEqual(watch?.record?.meta, { contentType: 'text/plain', user: { colour: 'blue' } })
  })

  it('says where a request fails', () => {
    const checked = check(batch(stash, { op: 'watch', record: { ...fileRecord, hash: 'abc' } }))
    assert.equal(checked.success, false)
    assert.match(checked.success ? '' : checked.message, /\/calls\/1\/record\/hash/)
  })

  it('checks each reply as zod does', () => {
    const watched = { ok: true, accepted: true, current: fileRecord, replaced: null }
    assert.equal(checkOf(PintReplies.watch)(structuredClone(watched)).success, true)
    assert.equal(
      checkOf(PintReplies.watch)({ ...watched, replaced: undefined }).success,
      PintReplies.watch.safeParse({ ...watched, replaced: undefined }).success,
    )
    assert.equal(checkOf(PintReplies.stash)({ ok: true, digest: 'x', bytes: 1 }).success, false)
  })

  it("keeps zod's own check for a schema a JSON Schema cannot carry", () => {
    const trimmed = checkOf(z.string().transform((s) => s.trim()))
    assert.deepEqual(trimmed(' a '), { success: true, data: 'a' })
    const long = checkOf(z.object({ name: z.string().refine((s) => s.length > 2, 'too short') }))
    assert.deepEqual(long({ name: 'ab' }), { success: false, message: 'too short' })
    assert.deepEqual(checkOf(z.object({ n: z.number().default(1) }))({}), { success: true, data: { n: 1 } })
    // Properties named as JSON Schema keywords are names, and compiled as such.
    const named = checkOf(z.object({ default: z.number(), oneOf: z.string() }))
    assert.deepEqual(named({ default: 1, oneOf: 'x', extra: true }), { success: true, data: { default: 1, oneOf: 'x' } })
    const wrong = named({ default: 'one', oneOf: 'x' })
    assert.match(wrong.success ? '' : wrong.message, /^\/default must be number/)
    // An untagged union of objects: trying one branch must not strip what the other would take.
    const either = checkOf(z.union([z.object({ a: z.number() }), z.object({ b: z.number() })]))
    assert.deepEqual(either({ b: 2 }), { success: true, data: { b: 2 } })
  })
})
