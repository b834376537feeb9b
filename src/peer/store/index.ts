export { type FragmentKey, FragmentStore, FragmentWriter, nameHash, type StoreStats } from './fragment-store.ts'
