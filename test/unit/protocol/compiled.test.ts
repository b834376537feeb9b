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

describe('a compiled validator', () => {
  for (const [label, r] of variants) {
    it(`agrees with its zod schema on a page record: ${label}`, () => {
      assert.equal(PageReply.safeParse(page(r)).success, PintReplies.page.safeParse(page(r)).success)
    })
  }

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
