import { DatabaseSync } from 'node:sqlite'
import { parentPort } from 'node:worker_threads'
import type { CheckpointOrder } from './checkpoints.ts'

/**
 * Checkpoints WAL databases for the thread that writes them (see
 * checkpoints.ts): a connection of its own to each, and a PASSIVE
 * checkpoint when asked, which copies what it can of the WAL into the
 * database without blocking the writer, fsyncs here, and lets the writer
 * start the WAL over once it is all copied.
 */
const open = new Map<string, DatabaseSync>()

parentPort?.on('message', (order: CheckpointOrder) => {
  try {
    if (order.op === 'open' && !open.has(order.path)) {
      const db = new DatabaseSync(order.path)
      db.exec('PRAGMA busy_timeout = 5000')
      open.set(order.path, db)
    } else if (order.op === 'checkpoint') {
      for (const path of order.paths) open.get(path)?.exec('PRAGMA wal_checkpoint(PASSIVE)')
    } else if (order.op === 'close') {
      open.get(order.path)?.close()
      open.delete(order.path)
      // Done with the file: the writer may now remove it, or its directory.
      parentPort?.postMessage({ closed: order.path })
    }
  } catch {
    // A failed checkpoint is tried again with the next one; the writer's WAL only grows meanwhile.
  }
})
