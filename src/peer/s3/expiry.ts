import type { Startable } from '../../shared/lifecycle.ts'
import type { Logger } from '../../shared/logger.ts'
import type { FileService } from '../files/index.ts'
import { abortUpload, UPLOADS_PREFIX, uploadsOf } from './uploads.ts'

export interface ExpirySettings {
  /** An upload neither completed nor aborted this long after it began is aborted. */
  expiryMs: number
  /** How often to look (every peer looks; the work is idempotent, and uploads are few). */
  intervalMs: number
}

/**
 * Aborts multipart uploads left unfinished (a client that died, a backup
 * tool killed mid-run): their parts would otherwise hold space for ever.
 * Every peer sweeps on its own timer, so the party keeps sweeping whichever
 * peers are up; two peers aborting one upload both just remove files.
 */
export class UploadExpiry implements Startable {
  readonly #files: FileService
  readonly #settings: ExpirySettings
  readonly #admitted: () => boolean
  readonly #now: () => number
  readonly #log: Logger
  #stopping = new AbortController()
  #timer: NodeJS.Timeout | undefined
  #running: Promise<number> | undefined

  constructor(files: FileService, settings: ExpirySettings, admitted: () => boolean, log: Logger, now: () => number = Date.now) {
    this.#files = files
    this.#settings = settings
    this.#admitted = admitted
    this.#log = log
    this.#now = now
  }

  start(signal?: AbortSignal): void {
    this.#stopping = new AbortController()
    signal?.addEventListener('abort', () => this.#stopping.abort(), { once: true })
    // Peers started together do not sweep together: a random first delay within one interval.
    const first = setTimeout(() => {
      void this.sweep()
      this.#timer = setInterval(() => void this.sweep(), this.#settings.intervalMs)
      this.#timer.unref()
    }, Math.random() * this.#settings.intervalMs)
    first.unref()
    this.#timer = first
  }

  async stop(): Promise<void> {
    this.#stopping.abort()
    clearTimeout(this.#timer)
    clearInterval(this.#timer)
    await this.#running
  }

  /** One sweep (or the one under way); resolves with how many uploads it aborted. */
  sweep(): Promise<number> {
    if (this.#stopping.signal.aborted || !this.#admitted()) return Promise.resolve(0)
    this.#running ??= this.#sweep()
      .catch((err: unknown) => {
        if (!this.#stopping.signal.aborted)
          this.#log.warn({ err: (err as Error).message }, 'sweeping expired multipart uploads failed; the next sweep tries again')
        return 0
      })
      .finally(() => {
        this.#running = undefined
      })
    return this.#running
  }

  async #sweep(): Promise<number> {
    const signal = this.#stopping.signal
    const cutoff = this.#now() - this.#settings.expiryMs
    let aborted = 0
    for (let token = ''; ; ) {
      const page = await this.#files.page({ prefix: UPLOADS_PREFIX, delimiter: '/', after: '', token, limit: 1000 }, signal)
      for (const prefix of page.prefixes) {
        const bucket = prefix.slice(UPLOADS_PREFIX.length, -1)
        for (const upload of await uploadsOf(this.#files, bucket, signal)) {
          if (upload.initiated > cutoff || signal.aborted) continue
          await abortUpload(this.#files, bucket, upload.uploadId, upload, signal)
          this.#log.info(
            { bucket, key: upload.key, uploadId: upload.uploadId, initiated: new Date(upload.initiated).toISOString() },
            'aborted an expired multipart upload',
          )
          aborted++
        }
      }
      if (!page.truncated || !page.next) return aborted
      token = page.next
    }
  }
}
