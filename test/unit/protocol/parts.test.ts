import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MAX_REQUEST_FRAME } from '../../../src/peer/net/tcp.ts'
import { FileRecord, partList, partsOf } from '../../../src/peer/protocol/index.ts'
import { syncBatches } from '../../../src/peer/transfer/tracker-client.ts'

const parts = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    name: `.s3/uploads/${'b'.repeat(63)}/0mxbehnmyd411642b766bf946948b1ec7/part.${String(i + 1).padStart(5, '0')}`,
    version: `17965348935${String(i % 100).padStart(2, '0')}-88815499`,
    size: 8 * 1024 * 1024,
  }))

function composite(name: string, n: number): FileRecord {
  return {
    name,
    version: '1796534893584-00000001',
    revision: 0,
    deleted: false,
    size: n,
    hash: 'a'.repeat(64),
    created: 1,
    coding: { k: 2, m: 1, stripeBytes: 1048576 },
    fragments: [],
    parts: partList(parts(n)),
  }
}

describe('files made of parts', () => {
  it('keep their part list compactly and give it back as it was', () => {
    const list = parts(3)
    assert.deepEqual(partsOf({ parts: partList(list) }), list)
    assert.deepEqual(partsOf({}), [])
    const mixed = [
      { name: 'a/x', version: '1796534893584-00000001', size: 1 },
      { name: 'b/y', version: '1796534893584-00000002', size: 2 },
    ]
    assert.deepEqual(partsOf({ parts: partList(mixed) }), mixed)
  })

  it("record 10,000 parts (S3's limit) in a record that fits a request frame, and pass the schema", () => {
    const record = composite('big/object', 10_000)
    assert.ok(JSON.stringify(record).length < MAX_REQUEST_FRAME / 2, `${JSON.stringify(record).length} bytes`)
    assert.ok(FileRecord.safeParse(record).success)
  })

  it('are handed to another tracker in batches that each fit a request frame', () => {
    const records = [composite('a', 10_000), composite('b', 10_000), composite('c', 5), composite('d', 5)]
    const batches = syncBatches(records)
    assert.deepEqual(
      batches.map((b) => b.map((r) => r.name)),
      [['a'], ['b', 'c', 'd']],
    )
    for (const b of batches) assert.ok(JSON.stringify(b).length < MAX_REQUEST_FRAME)
  })
})
