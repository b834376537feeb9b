import { Command } from 'commander'
import { isHousePartyError } from '../shared/errors.ts'
import { registerFileCommands } from './commands/files.ts'
import { registerGuestsCommand } from './commands/guests.ts'
import { registerKeygenCommand } from './commands/keygen.ts'
import { registerOperatorCommand } from './commands/operator.ts'
import { registerPartyCommand } from './commands/party.ts'
import { registerPeerCommand } from './commands/peer.ts'
import { registerSignalCommand } from './commands/signal.ts'
import { registerUiCommand } from './commands/ui.ts'

/** The houseparty command line; main.ts loads it once the runtime is known to be new enough. */
const program = new Command()
  .name('houseparty')
  .description('House Party: a RAID-like distributed file store. Peers form a party; files are erasure-coded across them.')
  .version('0.1.0')
  .showHelpAfterError()

registerPeerCommand(program)
registerPartyCommand(program)
registerGuestsCommand(program)
registerFileCommands(program)
registerUiCommand(program)
registerKeygenCommand(program)
registerOperatorCommand(program)
registerSignalCommand(program)

try {
  await program.parseAsync(process.argv)
} catch (err) {
  const code = isHousePartyError(err) ? err.code : 'ERR_INTERNAL'
  process.stderr.write(`houseparty: ${code}: ${(err as Error).message}\n`)
  process.exit(1)
}
