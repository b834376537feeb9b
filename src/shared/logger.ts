import { type Logger, pino } from 'pino'

export type { Logger }

export interface LoggerOptions {
  level: string
  /** Human-readable lines instead of JSON (for a terminal); JSON is the default. */
  pretty: boolean
  /** Fields on every line, e.g. the peer's address. */
  base?: Record<string, unknown>
}

/** One root logger per process; components take `logger.child({ component })`. */
export function createLogger(options: LoggerOptions): Logger {
  const base = { pid: process.pid, ...options.base }
  if (options.pretty) {
    return pino({
      level: options.level,
      base,
      transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' } },
    })
  }
  return pino({ level: options.level, base })
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
