import type { PintChannel, PintHandler } from '../net/index.ts'
import type { PintRequest } from '../protocol/index.ts'
import type { FragmentStore } from '../store/index.ts'
import { serveList, servePage, serveSync, serveWatch, serveWhere, type TrackerStore } from '../tracker/index.ts'
import { serveDrop, serveFetch, serveHold, serveInventory, type TransferEvents } from './handlers.ts'

export interface RouterOptions {
  store: FragmentStore
  trackers: TrackerStore
  events: TransferEvents
  /** Every request, by op, before it is served (a metric). */
  served?: (op: PintRequest['op']) => void
}

/** The data-plane request router: each authenticated request goes to the handler of its op. */
export function pintRouter(options: RouterOptions): PintHandler {
  const { store, trackers, events } = options
  return async (req: PintRequest, channel: PintChannel): Promise<void> => {
    options.served?.(req.op)
    switch (req.op) {
      case 'hold':
        return serveHold(req, channel, store, events)
      case 'fetch':
        return serveFetch(req, channel, store, events)
      case 'drop':
        return serveDrop(req, channel, store)
      case 'inventory':
        return serveInventory(channel, store)
      case 'watch':
        return serveWatch(req, channel, trackers)
      case 'where':
        return serveWhere(req, channel, trackers)
      case 'list':
        return serveList(channel, trackers)
      case 'page':
        return servePage(req, channel, trackers)
      case 'sync':
        return serveSync(req, channel, trackers)
    }
  }
}
