import { Transform } from 'node:stream'
import { SingleBar } from 'cli-progress'

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

/**
 * A byte-counting pass-through that drives a progress bar with the rate, on
 * a terminal only (scripts and pipes get clean output). Files under 1 MiB
 * finish too fast for a bar to help.
 */
export function progressMeter(label: string, total: number | undefined, enabled = process.stderr.isTTY === true): { meter: Transform; done: () => void } {
  let seen = 0
  const show = enabled && (total === undefined || total >= 1024 * 1024)
  const started = performance.now()
  const bar = show
    ? new SingleBar({
        format: `${label} [{bar}] {percentage}% {done}/{size} {rate}/s eta {eta_formatted}`,
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 50,
      })
    : undefined
  const payload = (): Record<string, string> => ({
    done: formatBytes(seen),
    size: total === undefined ? '?' : formatBytes(total),
    rate: formatBytes(seen / Math.max(0.001, (performance.now() - started) / 1000)),
  })
  bar?.start(total ?? 0, 0, payload())
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length
      bar?.update(seen, payload())
      cb(null, chunk)
    },
  })
  return {
    meter,
    done: () => {
      bar?.update(seen, payload())
      bar?.stop()
    },
  }
}
