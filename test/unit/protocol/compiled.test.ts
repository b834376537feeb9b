import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { PageReply, PintReplies } from '../../../src/peer/protocol/index.ts'

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
