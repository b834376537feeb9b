import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { PEER_SETTINGS, resolvePeerConfig } from '../../../src/shared/config.ts'
import { isHousePartyError } from '../../../src/shared/errors.ts'

const KEY = 'k'.repeat(32)

describe('peer configuration', () => {
  it('flags beat environment beat defaults', () => {
    const c = resolvePeerConfig({ port: 9000 }, { HOUSEPARTY_PORT: '8000', HOUSEPARTY_API_PORT: '8080', HOUSEPARTY_KEY: KEY })
    assert.equal(c.port, 9000)
    assert.equal(c.apiPort, 8080)
    assert.equal(c.membership.pingIntervalMs, 200)
    assert.equal(c.apiHost, c.host)
    assert.deepEqual(c.key, Buffer.from(KEY))
  })

  it('--join takes comma lists, and "none" means found a party', () => {
    assert.deepEqual(resolvePeerConfig({ join: ['a:1,b:2', 'c:3'], insecure: true }, {}).join, ['a:1', 'b:2', 'c:3'])
    assert.deepEqual(resolvePeerConfig({}, { HOUSEPARTY_JOIN: 'none', HOUSEPARTY_INSECURE: 'true' }).join, [])
  })

  it('refuses to run without a key unless --insecure, and refuses bad values with the setting named', () => {
    const fails = (flags: Record<string, unknown>, env: Record<string, string>, re: RegExp): void => {
      assert.throws(
        () => resolvePeerConfig(flags as never, env),
        (e: unknown) => isHousePartyError(e, 'ERR_INVALID_CONFIG') && re.test((e as Error).message),
      )
    }
    fails({}, {}, /--insecure/)
    fails({ port: 'abc', insecure: true }, {}, /--port/)
    fails({ port: 0, insecure: true }, {}, /--port/)
    fails({}, { HOUSEPARTY_KEY: 'short' }, /16 characters/)
    fails({ insecure: 'maybe' }, {}, /--insecure/)
    fails({ insecure: true }, { HOUSEPARTY_KEY: KEY }, /contradict/)
    fails({ keyFile: '/nonexistent/key' }, {}, /cannot read/)
  })

  it('every setting has a flag, an env var and a description', () => {
    for (const s of PEER_SETTINGS) {
      assert.match(s.flag, /^--[a-z0-9-]+$/)
      assert.match(s.env, /^HOUSEPARTY_[A-Z0-9_]+$/)
      assert.ok(s.description.length > 10)
    }
    assert.equal(new Set(PEER_SETTINGS.map((s) => s.env)).size, PEER_SETTINGS.length)
  })
})

describe('the config type', () => {
  it('is derived from the settings table, nested and typed by kind', () => {
    const c = resolvePeerConfig({ insecure: true }, {})
    const k: number = c.coding.k
    const onStop: 'auto' | 'handoff' | 'restart' = c.onStop
    const join: string[] = c.join
    const pretty: boolean = c.logPretty
    // @ts-expect-error an int setting is a number, not a string: the type is not `any`
    const wrong: string = c.recovery.rebuildDelayMs
    // @ts-expect-error where the key came from is not in the config: the key itself is
    void c.keyFile
    assert.deepEqual([typeof k, onStop, join, typeof pretty, typeof wrong], ['number', 'auto', [], 'boolean', 'number'])
  })
})
