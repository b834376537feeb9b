export { answerTracker } from './handlers.ts'
export { compareNames, decodeToken, encodeToken, guestLimit, listedOf, type MergedPage, mergePages, type Page, type PageQuery } from './listing.ts'
export { compareRecords, newestRecord } from './records.ts'
export { TrackerStore, type WatchResult } from './tracker-store.ts'
