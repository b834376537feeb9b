import type { ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'

/**
 * Appends a process's stdout and stderr to one file. Both are piped without
 * ending the file (the first to end would close it under the other), and the
 * file is closed when the process has closed both.
 */
export function logOutputTo(proc: ChildProcess, path: string): void {
  const log = createWriteStream(path, { flags: 'a' })
  proc.stdout?.pipe(log, { end: false })
  proc.stderr?.pipe(log, { end: false })
  proc.once('close', () => log.end())
}
