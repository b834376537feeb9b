import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { clientError } from '../../../src/peer/api/server.ts'

describe("the API's answer to Fastify's own refusals", () => {
  it('keeps what a 4xx means instead of calling every one an invalid argument', () => {
    assert.equal(clientError(404, 'no route').code, 'ERR_NOT_FOUND')
    assert.equal(clientError(404, 'no route').status, 404)
    assert.equal(clientError(401, 'who').code, 'ERR_UNAUTHORIZED')
    assert.equal(clientError(400, 'bad json').code, 'ERR_INVALID_ARGUMENT')
    assert.equal(clientError(415, 'type').status, 400)
  })
})
