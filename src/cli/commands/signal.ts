import { spawn } from 'node:child_process'
import { constants } from 'node:os'
import { type Command, Option } from 'commander'
import { inspectLock } from '../../peer/identity/index.ts'
import { PEER_SETTINGS, resolveSettings } from '../../shared/config.ts'
import { HousePartyError } from '../../shared/errors.ts'
import { addSettingOptions, settingsFromOptions } from '../settings.ts'

const DATA_DIR = PEER_SETTINGS.filter((s) => s.key === 'dataDir')

/**
 * `houseparty signal SIGNAL`: signals the peer running on a data dir (its pid
 * is in the dir's lock file). In a container the peer is not PID 1 (tini is),
 * so this is how a crash experiment kills or freezes it through `kubectl exec`.
 * `STOP --for N` freezes it for N seconds: a detached process thaws it, so a
 * freeze ends even if whoever asked for it goes away.
 */
export function registerSignalCommand(program: Command): void {
  const cmd = program
    .command('signal')
    .description('send a signal to the peer running on a data dir (KILL, STOP, CONT, TERM): for crash experiments')
    .argument('<signal>', 'signal name, with or without SIG')
    .addOption(new Option('--for <seconds>', 'with STOP: send CONT after this many seconds').argParser(Number))
  addSettingOptions(cmd, DATA_DIR)
  cmd.action(async (name: string, opts: Record<string, unknown>) => {
    const signal = (name.toUpperCase().startsWith('SIG') ? name.toUpperCase() : `SIG${name.toUpperCase()}`) as NodeJS.Signals
    if (!(signal in constants.signals)) throw new HousePartyError('ERR_INVALID_ARGUMENT', `unknown signal ${name}`)
    const seconds = opts.for as number | undefined
    if (seconds !== undefined && (signal !== 'SIGSTOP' || !(seconds > 0))) {
      throw new HousePartyError('ERR_INVALID_ARGUMENT', '--for takes a positive number of seconds, and only with STOP')
    }
    const { dataDir } = resolveSettings(DATA_DIR, settingsFromOptions(DATA_DIR, opts), process.env) as { dataDir: string }
    const { pid, why } = await inspectLock(dataDir)
    if (pid === undefined) throw new HousePartyError('ERR_NOT_FOUND', `no peer is running on ${dataDir}: ${why}`)
    if (seconds !== undefined) {
      // Started before the freeze, so a thaw is on its way whatever happens next.
      const thaw = `setTimeout(() => { try { process.kill(${pid}, 'SIGCONT') } catch {} }, ${Math.round(seconds * 1000)})`
      spawn(process.execPath, ['-e', thaw], { detached: true, stdio: 'ignore' }).unref()
    }
    process.kill(pid, signal)
    process.stdout.write(`${signal} sent to the peer on ${dataDir} (pid ${pid})${seconds ? `; CONT in ${seconds} s` : ''}\n`)
  })
}
