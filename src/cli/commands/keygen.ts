import { randomBytes } from 'node:crypto'
import type { Command } from 'commander'

export function newPartyKey(): string {
  return randomBytes(32).toString('base64url')
}

export function registerKeygenCommand(program: Command): void {
  program
    .command('keygen')
    .description('print a new random party key (for --key-file or a Kubernetes Secret)')
    .action(() => {
      process.stdout.write(`${newPartyKey()}\n`)
    })
}
