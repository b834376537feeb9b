export { FragmentStore, nameHash, type StoreStats } from './fragment-store.ts'
export { ChunkBuffers, ChunkReader } from './reader.ts'
export { type AppendOptions, type FragmentKey, FragmentWriter } from './writer.ts'
