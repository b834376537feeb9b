export { serveList, serveSync, serveWatch, serveWhere } from './handlers.ts'
export { compareRecords, newestRecord } from './records.ts'
export { TrackerStore, type WatchResult } from './tracker-store.ts'
