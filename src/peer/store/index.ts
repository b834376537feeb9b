export { type AppendOptions, ChunkReader, type FragmentKey, FragmentStore, FragmentWriter, nameHash, type StoreStats } from './fragment-store.ts'
