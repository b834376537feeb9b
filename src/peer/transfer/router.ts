import { HousePartyError } from '../../shared/errors.ts'
import type { PintChannel, PintHandler } from '../net/index.ts'
import type { PintReply, PintRequest } from '../protocol/index.ts'
import type { Arc } from '../ring/index.ts'
import type { FragmentStore } from '../store/index.ts'
import { answerTracker, type TrackerStore } from '../tracker/index.ts'
import { serveBatch } from './batch.ts'
import { type DropQuery, serveDigests, serveDrop, serveFetch, serveHold, serveInventory, serveStash, type TransferEvents } from './handlers.ts'
import { serveWhere } from './where.ts'

export interface RouterOptions {
  store: FragmentStore
  trackers: TrackerStore
  events: TransferEvents
  /** The health of the files in an arc (recovery answers it: this layer only carries it). */
  arcHealth?: (arc: Arc) => Promise<PintReply<'health'>>
  /** Every request, by op, before it is served (a metric). */
  served?: (op: PintRequest['op']) => void
  /** Whether the newest record counts on this peer's copy of what a drop asks for: such a drop is refused (see serveDrop). */
  needed?: (query: DropQuery) => Promise<boolean>
}

/** The data-plane request router: each authenticated request goes to the handler of its op. */
export function pintRouter(options: RouterOptions): PintHandler {
  const { store, trackers, events } = options
  return async (req: PintRequest, channel: PintChannel): Promise<void> => {
    options.served?.(req.op)
    if (req.op === 'batch') for (const c of req.calls) options.served?.(c.op)
    switch (req.op) {
      case 'hold':
        return serveHold(req, channel, store, events)
      case 'stash':
        return serveStash(req, channel, store, events)
      case 'fetch':
        return serveFetch(req, channel, store, events)
      case 'drop':
        return serveDrop(req, channel, store, events, options.needed)
      case 'inventory':
        return serveInventory(req, channel, store)
      case 'digests':
        return serveDigests(req, channel, store)
      case 'where':
        return serveWhere(req, channel, store, trackers, events)
      case 'watch':
      case 'page':
      case 'sync':
      case 'recordDigests':
      case 'recordsIn':
        return channel.reply(await answerTracker(req, trackers))
      case 'batch':
        return serveBatch(req, channel, store, trackers, events)
      case 'health':
        if (!options.arcHealth) throw new HousePartyError('ERR_NOT_FOUND', 'no file health on this peer')
        return channel.reply(await options.arcHealth(req.arc))
    }
  }
}
