import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Domains } from '../../../src/peer/protocol/index.ts'
import { DomainView, layoutKey } from '../../../src/peer/recovery/spread.ts'

const A = '00000000000000aa'
const B = '00000000000000bb'
const C = '00000000000000cc'
const D = '00000000000000dd'

describe('failure domains in recovery', () => {
  it('keys the layout by guests and where they run: a guest back on another node changes it, nothing else does', () => {
    const where = new Map<string, Domains>([
      [A, { node: 'n1' }],
      [B, { node: 'n2' }],
    ])
    const before = layoutKey([A, B], (id) => where.get(id))
    assert.equal(
      layoutKey([A, B], (id) => where.get(id)),
      before,
    )
    where.set(B, { node: 'n1' })
    assert.notEqual(
      layoutKey([A, B], (id) => where.get(id)),
      before,
    )
    assert.notEqual(
      layoutKey([A, B, C], (id) => where.get(id)),
      before,
    )
  })

  it('knows the best spread the party allows for each coding', () => {
    // Two nodes: 2+1 must put two fragments on one of them; 4 peers on 4 nodes take one each.
    const twoNodes = new DomainView([A, B, C, D], (id) => ({ node: id === A || id === B ? 'n1' : 'n2' }))
    assert.deepEqual(twoNodes.best(2, 1), [2, 2, 2])
    const fourNodes = new DomainView([A, B, C, D], () => undefined)
    assert.deepEqual(fourNodes.best(2, 1), [1, 1, 1])
    assert.deepEqual(twoNodes.spreadOf([A, B, C]), [2, 2, 2])
  })
})
