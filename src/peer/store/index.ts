export { FragmentStore, nameHash, type StoreStats } from './fragment-store.ts'
export { ChunkReader } from './reader.ts'
export { type AppendOptions, type FragmentKey, FragmentWriter } from './writer.ts'
