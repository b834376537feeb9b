import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { bytesOf, getBytes, putBytes, sha256 } from '../helpers/files.ts'
import { partiesForThisFile, startParty } from '../helpers/party.ts'

const newParty = partiesForThisFile()

describe('files on a party of 5 real peers (2+1)', () => {
  it('round-trips edge sizes through any peer', async () => {
    const { party, cleanup } = await newParty(5, ['--stripe-bytes', '65536'])
    await startParty(party, 5)
    const S = 65536
    for (const size of [0, 1, 2, 3, 7, 1001, S - 1, S, S + 1, 3 * S + 5]) {
      const data = bytesOf(size, size + 1)
      const name = `edge/${size}.bin`
      const put = await putBytes(party.peer(size % 5).api, name, data)
      assert.equal(put.status, 201, `${size}: ${await put.clone().text()}`)
      const got = await getBytes(party.peer((size + 2) % 5).api, name)
      assert.equal(got.status, 200, `${size}: ${JSON.stringify(got.json)}`)
      assert.equal(got.body.length, size)
      assert.equal(sha256(got.body), sha256(data), `size ${size}`)
      assert.equal(got.etag, `"${sha256(data)}"`)
    }
    await cleanup()
  })
})
