import { Transform } from 'node:stream'
import { MultiBar, Presets, type SingleBar } from 'cli-progress'

/** Human-readable bytes: 1.5 MiB. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`
}

/** A byte-counting pass-through for one file, and what to call when it is over. */
export interface FileMeter {
  meter: Transform
  done: () => void
}

/**
 * Progress of a transfer on stderr, on a terminal only (scripts and pipes
 * get clean output): one bar per file in flight, with its rate, and for a
 * transfer of several files a total bar (files and bytes). A single file
 * under 1 MiB finishes too fast for a bar to help.
 */
export class Progress {
  readonly #bars: MultiBar | undefined
  readonly #total: SingleBar | undefined
  readonly #started = performance.now()
  #bytes = 0
  #files = 0
  readonly #totalFiles: number
  readonly #totalBytes: number

  constructor(options: { files: number; bytes: number; enabled?: boolean }) {
    const enabled = options.enabled ?? process.stderr.isTTY === true
    this.#totalFiles = options.files
    this.#totalBytes = options.bytes
    const worth = options.files > 1 || options.bytes >= 1024 * 1024
    this.#bars =
      enabled && worth
        ? new MultiBar(
            {
              stream: process.stderr,
              hideCursor: true,
              clearOnComplete: false,
              etaBuffer: 50,
              format: '{label} [{bar}] {percentage}% {done}/{size} {rate}/s eta {eta_formatted}',
            },
            Presets.shades_classic,
          )
        : undefined
    if (this.#bars && options.files > 1) {
      this.#total = this.#bars.create(Math.max(1, options.bytes), 0, this.#payload('total', 0, options.bytes, this.#started), {
        format: '{label} [{bar}] {percentage}% {files} files, {done}/{size} {rate}/s eta {eta_formatted}',
      })
    }
  }

  #payload(label: string, seen: number, total: number | undefined, since: number): Record<string, string> {
    return {
      label,
      files: `${this.#files}/${this.#totalFiles}`,
      done: formatBytes(seen),
      size: total === undefined ? '?' : formatBytes(total),
      rate: formatBytes(seen / Math.max(0.001, (performance.now() - since) / 1000)),
    }
  }

  /** A meter for one file of `size` bytes (undefined: unknown). */
  file(label: string, size: number | undefined): FileMeter {
    const started = performance.now()
    let seen = 0
    const bar = this.#bars?.create(Math.max(1, size ?? 0), 0, this.#payload(label, 0, size, started))
    const meter = new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        seen += chunk.length
        this.#bytes += chunk.length
        bar?.update(seen, this.#payload(label, seen, size, started))
        this.#total?.update(this.#bytes, this.#payload('total', this.#bytes, this.#totalBytes, this.#started))
        cb(null, chunk)
      },
    })
    return {
      meter,
      done: () => {
        this.#files++
        bar?.update(seen, this.#payload(label, seen, size, started))
        // With a total bar, finished files make room for the next ones.
        if (bar && this.#total) this.#bars?.remove(bar)
        this.#total?.update(this.#bytes, this.#payload('total', this.#bytes, this.#totalBytes, this.#started))
      },
    }
  }

  stop(): void {
    this.#bars?.stop()
  }
}
