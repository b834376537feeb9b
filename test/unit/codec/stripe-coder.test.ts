import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { crc32 } from 'node:zlib'
import { ErasureCoder, StripeCoder, shardBytes, sharedSlot, splitStripe } from '../../../src/peer/codec/index.ts'

describe('StripeCoder (coding on a worker thread)', () => {
  for (const [k, m] of [
    [2, 1],
    [4, 2],
  ] as const) {
    it(`codes stripes in place exactly as the inline coder does, and hashes the file (${k}+${m})`, async () => {
      const stripeBytes = 64 * 1024
      // Full stripes, then a short one whose shards need padding.
      const file = randomBytes(3 * stripeBytes + 12_345)
      const inline = new ErasureCoder(k, m)
      // With the MD5 (an S3 ETag) as well as the sha256.
      const coder = await StripeCoder.open(k, m, { md5: true })
      const slotBytes = shardBytes(stripeBytes, k) * (k + m)
      for (let at = 0; at < file.length; at += stripeBytes) {
        const stripe = file.subarray(at, Math.min(file.length, at + stripeBytes))
        const slot = sharedSlot(slotBytes)
        slot.fill(0xee) // stale bytes from an earlier stripe must not leak into the padding
        stripe.copy(slot)
        const { shards, checksums } = await coder.code(slot, stripe.length)
        const data = splitStripe(Buffer.from(stripe), k)
        const want = [...data, ...inline.encode(data)]
        assert.equal(shards.length, k + m)
        for (let i = 0; i < k + m; i++) {
          assert.ok(shards[i]?.equals(want[i] as Buffer), `shard ${i} at ${at}`)
          assert.equal(checksums[i]?.readUInt32BE(0), crc32(want[i] as Buffer))
        }
      }
      assert.deepEqual(await coder.finish(), { sha256: createHash('sha256').update(file).digest('hex'), md5: createHash('md5').update(file).digest('hex') })
    })
  }

  it('keeps concurrent sessions apart', async () => {
    const a = await StripeCoder.open(2, 1)
    const b = await StripeCoder.open(2, 1)
    const slotA = sharedSlot(3 * 512)
    const slotB = sharedSlot(3 * 512)
    slotA.fill(1, 0, 1000)
    slotB.fill(2, 0, 1000)
    await Promise.all([a.code(slotA, 1000), b.code(slotB, 1000)])
    assert.deepEqual(await a.finish(), { sha256: createHash('sha256').update(Buffer.alloc(1000, 1)).digest('hex') })
    assert.deepEqual(await b.finish(), { sha256: createHash('sha256').update(Buffer.alloc(1000, 2)).digest('hex') })
  })

  it('refuses a slot that is not shared memory, and a closed session', async () => {
    const coder = await StripeCoder.open(2, 1)
    await assert.rejects(coder.code(Buffer.alloc(3 * 512), 1000), /shared memory/)
    coder.close()
    await assert.rejects(coder.code(sharedSlot(3 * 512), 1000), /no coding session/)
  })
})
