import { Command } from 'commander'
import { isHousePartyError } from '../shared/errors.ts'
import { registerAliasCommand } from './commands/alias.ts'
import { registerBrowseCommands } from './commands/browse.ts'
import { registerCertgenCommand } from './commands/certgen.ts'
import { registerCheckCommands } from './commands/check.ts'
import { registerCompletionCommand } from './commands/completion.ts'
import { registerFileCommands } from './commands/files.ts'
import { registerGuestsCommand } from './commands/guests.ts'
import { registerKeyCommands } from './commands/key.ts'
import { registerKeygenCommand } from './commands/keygen.ts'
import { registerMirrorCommand } from './commands/mirror.ts'
import { registerOperatorCommand } from './commands/operator.ts'
import { registerPartyCommand } from './commands/party.ts'
import { registerPeerCommand } from './commands/peer.ts'
import { registerSignalCommand } from './commands/signal.ts'
import { registerUiCommand } from './commands/ui.ts'

/** The houseparty command line; main.ts loads it once the runtime is known to be new enough. */
export function createProgram(): Command {
  const program = new Command()
    .name('houseparty')
    .description('House Party: a RAID-like distributed file store. Peers form a party; files are erasure-coded across them.')
    .version('0.1.0')
    .showHelpAfterError()

  registerPeerCommand(program)
  registerPartyCommand(program)
  registerGuestsCommand(program)
  registerFileCommands(program)
  registerBrowseCommands(program)
  registerCheckCommands(program)
  registerMirrorCommand(program)
  registerAliasCommand(program)
  registerUiCommand(program)
  registerKeygenCommand(program)
  registerCertgenCommand(program)
  registerKeyCommands(program)
  registerOperatorCommand(program)
  registerSignalCommand(program)
  registerCompletionCommand(program)
  return program
}

/** Runs the command line; a coded error is printed as `houseparty: CODE: message` and exits 1. */
export async function run(argv: string[]): Promise<void> {
  try {
    await createProgram().parseAsync(argv)
  } catch (err) {
    const code = isHousePartyError(err) ? err.code : 'ERR_INTERNAL'
    process.stderr.write(`houseparty: ${code}: ${(err as Error).message}\n`)
    process.exit(1)
  }
}
