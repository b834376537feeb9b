import assert from 'node:assert/strict'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import { closeDatabase, GroupCommit, openDatabase, writeMeta } from '../../../src/shared/sqlite.ts'
import { waitFor } from '../../helpers/wait.ts'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true, maxRetries: 5 })
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
    const commits = new GroupCommit(db, path)
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
    await closeDatabase(db, path)
  })

  it('checkpoints a database in a worker, never inside a commit on the writing thread', async () => {
    const path = await fresh()
    const db = openDatabase(path, { synchronous: 'NORMAL', schema: 1, create })
    const commits = new GroupCommit(db, path)
    const put = db.prepare('INSERT INTO t VALUES (?, ?)')
    const size = async (file: string): Promise<number> => (await stat(file).catch(() => ({ size: 0 }))).size
    const before = await size(path)
    // About 4 MB in many commits: past SQLite's own threshold (1,000 pages), where it would checkpoint inside a commit.
    for (let turn = 0; turn < 40; turn++) {
      commits.begin()
      for (let i = 0; i < 25; i++) put.run(`${turn}/${i}`, 'x'.repeat(4000))
      await commits.committed()
    }
    assert.equal(await size(path), before, 'no commit copied the WAL into the database itself')
    // The worker does, within about a second of the commits.
    await waitFor('the worker to checkpoint the WAL into the database', async () => (await size(path)) > 3_000_000, { timeoutMs: 30_000 })
    await closeDatabase(db, path)
  })

  it('refuses a database of a newer schema', async () => {
    const path = await fresh()
    const db = openDatabase(path, { synchronous: 'NORMAL', schema: 1, create })
    writeMeta(db, 'schema', '2')
    await closeDatabase(db, path)
    assert.throws(() => openDatabase(path, { synchronous: 'NORMAL', schema: 1, create }), /newer than this peer's 1/)
  })
})
