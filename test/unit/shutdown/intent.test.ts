import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decideStop, type PodFacts, podOrdinal } from '../../../src/peer/shutdown/index.ts'
import { resolvePeerConfig } from '../../../src/shared/config.ts'

const pod = (facts: Partial<PodFacts>): PodFacts => ({ ordinal: 2, replicas: 5, statefulSetDeleting: false, claimDeleting: false, ...facts })

describe('what a stop means', () => {
  it('a pod its StatefulSet still counts is restarting: nothing moves', () => {
    assert.equal(decideStop(pod({})).intent, 'restart')
    assert.equal(decideStop(pod({ ordinal: 4, replicas: 5 })).intent, 'restart')
  })

  it('a scale-down, a deleted set, a deleted claim, no set, or no answer: the data is handed off', () => {
    assert.equal(decideStop(pod({ ordinal: 4, replicas: 4 })).intent, 'handoff')
    assert.equal(decideStop(pod({ ordinal: 0, replicas: 0 })).intent, 'handoff')
    assert.equal(decideStop(pod({ statefulSetDeleting: true })).intent, 'handoff')
    assert.equal(decideStop(pod({ claimDeleting: true })).intent, 'handoff')
    assert.equal(decideStop(pod({ replicas: undefined })).intent, 'handoff')
    const unknown = decideStop(undefined)
    assert.equal(unknown.intent, 'handoff')
    assert.match(unknown.why, /could not say/)
  })

  it('reads the ordinal of a StatefulSet pod name', () => {
    assert.equal(podOrdinal('houseparty-0'), 0)
    assert.equal(podOrdinal('my-party-houseparty-12'), 12)
    assert.equal(podOrdinal('houseparty'), undefined)
    assert.equal(podOrdinal(''), undefined)
  })

  it('--on-stop takes auto, handoff or restart, and defaults to auto', () => {
    assert.equal(resolvePeerConfig({ insecure: true }, {}).onStop, 'auto')
    assert.equal(resolvePeerConfig({ insecure: true, onStop: 'restart' }, {}).onStop, 'restart')
    assert.throws(() => resolvePeerConfig({ insecure: true, onStop: 'never' }, {}), /--on-stop must be one of auto, handoff, restart/)
  })
})
