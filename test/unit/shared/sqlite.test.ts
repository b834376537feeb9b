import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import { GroupCommit, openDatabase, writeMeta } from '../../../src/shared/sqlite.ts'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})
const create = 'CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID'

async function fresh(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-sqlite-'))
  dirs.push(dir)
  return join(dir, 'test.db')
}

describe('sqlite', () => {
  it('group commit: the writes of one turn share one transaction, committed at its end, and committed() waits for it', async () => {
    const path = await fresh()
    const db = openDatabase(path, { synchronous: 'FULL', schema: 1, create })
    const commits = new GroupCommit(db)
    const put = db.prepare('INSERT INTO t VALUES (?, ?)')
    const other = new DatabaseSync(path)
    const count = (): number => (other.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n
    commits.begin()
    put.run('a', '1')
    commits.begin()
    put.run('b', '2')
    assert.equal(db.isTransaction, true)
    assert.equal(count(), 0, 'another connection sees nothing before the commit')
    await commits.committed()
    assert.equal(count(), 2)
    assert.equal(db.isTransaction, false)
    await commits.committed() // nothing pending: at once
    assert.throws(() =>
      commits.transaction(() => {
        put.run('c', '3')
        throw new Error('half done')
      }),
    )
    assert.equal(count(), 2, 'a transaction that throws leaves nothing')
    other.close()
    db.close()
  })

  it('refuses a database of a newer schema', async () => {
    const path = await fresh()
    const db = openDatabase(path, { synchronous: 'NORMAL', schema: 1, create })
    writeMeta(db, 'schema', '2')
    db.close()
    assert.throws(() => openDatabase(path, { synchronous: 'NORMAL', schema: 1, create }), /newer than this peer's 1/)
  })
})
