import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'

const TCPDUMP = '/usr/bin/tcpdump'

/** Why a loopback capture cannot run here, or false when it can (tcpdump, and root for its raw socket). */
export function captureUnavailable(): string | false {
  if (!existsSync(TCPDUMP)) return 'tcpdump is not installed (Debian: apt-get install tcpdump; .ci/run installs it)'
  if (process.getuid?.() !== 0) return 'a capture needs root'
  return false
}

/**
 * Records every packet on the loopback interface to or from `ports` (TCP and
 * UDP) into `file`, as a pcap (test infrastructure). stop() ends the capture
 * and returns the file's bytes: packets whole, payloads as sent, so a search
 * of it finds any plaintext that crossed the wire.
 */
export async function captureLoopback(ports: readonly number[], file: string): Promise<{ stop: () => Promise<Buffer> }> {
  const filter = ports.map((p) => `port ${p}`).join(' or ')
  const proc: ChildProcess = spawn(TCPDUMP, ['-i', 'lo', '-n', '-U', '-s', '0', '-w', file, filter], { stdio: ['ignore', 'ignore', 'pipe'] })
  let said = ''
  await new Promise<void>((ok, fail) => {
    proc.stderr?.on('data', (d: Buffer) => {
      said += d.toString()
      if (said.includes('listening on')) ok()
    })
    proc.once('exit', (code) => fail(new Error(`tcpdump exited ${code}: ${said}`)))
  })
  return {
    stop: async () => {
      const exited = new Promise((ok) => proc.once('exit', ok))
      proc.kill('SIGINT')
      await exited
      return readFile(file)
    },
  }
}
