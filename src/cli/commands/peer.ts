import type { Command } from 'commander'
import { Peer } from '../../peer/peer.ts'
import { PEER_SETTINGS, resolvePeerConfig } from '../../shared/config.ts'
import { HousePartyError } from '../../shared/errors.ts'
import { createLogger } from '../../shared/logger.ts'
import { missingPeerFlags } from '../../shared/runtime.ts'
import { addSettingOptions, settingsFromOptions } from '../settings.ts'

/** `houseparty peer`: runs one guest in the foreground until SIGTERM/SIGINT. */
export function registerPeerCommand(program: Command): void {
  const cmd = program
    .command('peer')
    .description('run a peer: join the party at --join, or found a new one')
    .argument('[files...]', 'files to put into the party once admitted')
  addSettingOptions(cmd, PEER_SETTINGS)
  cmd.action(async (files: string[], opts: Record<string, unknown>) => {
    const config = resolvePeerConfig(settingsFromOptions(PEER_SETTINGS, opts))
    const logger = createLogger({ level: config.logLevel, pretty: config.logPretty })
    const peer = await Peer.open(config, logger)
    const missing = missingPeerFlags()
    if (missing.length > 0) {
      logger.warn({ missing }, 'node was started without the flags a peer runs best with; puts and gets cost more CPU (see the README, Two commands)')
    }
    const leave = installSignalHandlers(peer)
    if (config.exitWithParent) {
      // The launcher's own process group gets the terminal's Ctrl-C; if the launcher dies without passing it on, leave anyway.
      const parent = process.ppid
      setInterval(() => {
        if (process.ppid !== parent) leave('parent exited')
      }, 1_000).unref()
    }
    process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'))
    await peer.start()
    void peer.membership.ended().then(async (status) => {
      if (status !== 'superseded') return
      // Two processes on one data dir would fight over one place on the ring: the older one goes.
      const err = new HousePartyError(
        'ERR_JOIN_REJECTED',
        `a newer start of guest ${peer.identity.id} took its place; is ${config.dataDir} in use by another process?`,
      )
      logger.fatal({ code: err.code }, err.message)
      await peer.stop()
      process.exit(1)
    })
    if (files.length > 0) {
      await peer.admitted()
      // Failures are logged, never fatal: the peer keeps serving the party.
      await peer.putLocalFiles(files).catch((err) => logger.error({ err: (err as Error).message, files }, 'could not put the files given on the command line'))
    }
  })
}

/** SIGTERM/SIGINT leave the party gracefully; a second one exits at once. Returns the same leave, for other reasons to go. */
function installSignalHandlers(peer: Peer): (reason: string) => void {
  let stopping = false
  const onSignal = (signal: string): void => {
    if (stopping) {
      peer.log.warn({ signal }, 'second signal: exiting now')
      process.exit(1)
    }
    stopping = true
    peer.log.info({ signal }, 'leaving the party')
    peer
      .leave()
      .then(() => process.exit(0))
      .catch((err) => {
        peer.log.error({ err }, 'leave failed')
        process.exit(1)
      })
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  return (reason) => {
    if (!stopping) onSignal(reason)
  }
}
