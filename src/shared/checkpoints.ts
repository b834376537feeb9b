import { Worker } from 'node:worker_threads'

/** Orders to the checkpoint worker (checkpoint-worker.ts). */
export type CheckpointOrder = { op: 'open'; path: string } | { op: 'checkpoint'; paths: string[] } | { op: 'close'; path: string }

/** Time between two checkpoints of a database being written: its WAL grows by what that time's commits write, no more. */
const CHECKPOINT_EVERY_MS = 1000

/**
 * WAL checkpoints off the event loop. SQLite checkpoints a WAL database
 * inside the commit that grows the WAL past `wal_autocheckpoint` pages
 * (1,000 by default), on the committing thread, and a checkpoint fsyncs
 * the WAL and then the database. On a peer taking a burst of small puts
 * that was about four fsyncs a second on the event loop (234 in a minute,
 * traced), a few ms each and far longer while the disk is busy: long enough
 * for the other guests to give up on the peer as frozen and fail puts. So
 * one worker thread, with a connection of its own to each database,
 * checkpoints those written to at most once a CHECKPOINT_EVERY_MS, and the
 * writers' own checkpoints come sixteen times less often (see openDatabase)
 * and find little left to copy. It runs while any database is open.
 */
class Checkpoints {
  #worker: Worker | undefined
  /** Open databases, with how many times each is open in this thread. */
  readonly #open = new Map<string, number>()
  readonly #written = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  /** Closes waiting for the worker's answer (it is kept referenced meanwhile). */
  #closing = 0

  /** A database at `path` is open for writing in this thread: the worker opens its own connection to it. */
  open(path: string): void {
    this.#open.set(path, (this.#open.get(path) ?? 0) + 1)
    this.#post({ op: 'open', path })
  }

  /** A commit to `path`: a checkpoint follows within CHECKPOINT_EVERY_MS. */
  written(path: string): void {
    if (!this.#open.has(path)) return
    this.#written.add(path)
    if (this.#timer) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      const paths = [...this.#written]
      this.#written.clear()
      if (paths.length > 0) this.#post({ op: 'checkpoint', paths })
    }, CHECKPOINT_EVERY_MS)
    this.#timer.unref()
  }

  /**
   * The database at `path` is closing: resolves once the worker has let go
   * of it (any checkpoint of it under way is over), so the file and its
   * directory may be removed. The worker stops once no database is open.
   */
  close(path: string): Promise<void> {
    const count = this.#open.get(path)
    if (count === undefined) return Promise.resolve()
    if (count > 1) {
      this.#open.set(path, count - 1)
      return Promise.resolve()
    }
    this.#open.delete(path)
    this.#written.delete(path)
    const worker = this.#worker
    if (!worker) return Promise.resolve()
    const last = this.#open.size === 0
    if (last) {
      clearTimeout(this.#timer)
      this.#timer = undefined
      this.#worker = undefined
    }
    // Its answer must arrive even if nothing else keeps this process running.
    this.#closing++
    worker.ref()
    return new Promise((resolve) => {
      const done = (): void => {
        worker.off('message', onMessage)
        worker.off('exit', done)
        if (--this.#closing === 0 && this.#worker === worker) worker.unref()
        if (last) void worker.terminate()
        resolve()
      }
      const onMessage = (message: { closed?: string }): void => {
        if (message.closed === path) done()
      }
      worker.on('message', onMessage)
      worker.on('exit', done)
      worker.postMessage({ op: 'close', path })
    })
  }

  #post(order: CheckpointOrder): void {
    if (!this.#worker) {
      const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js'
      const worker = new Worker(new URL(`./checkpoint-worker.${ext}`, import.meta.url))
      // It never keeps the process alive: a checkpoint cut short by an exit is as safe as one cut by a crash.
      worker.unref()
      worker.on('error', () => {
        if (this.#worker === worker) this.#worker = undefined
      })
      this.#worker = worker
      for (const path of this.#open.keys()) if (path !== (order as { path?: string }).path) worker.postMessage({ op: 'open', path })
    }
    this.#worker.postMessage(order)
  }
}

/** The process's one checkpointer. */
export const checkpoints = new Checkpoints()
