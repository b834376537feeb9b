export { serveDrop, serveFetch, serveHold, serveInventory, type TransferEvents } from './handlers.ts'
export { type FragmentSink, type Held, LocalSink, RemoteSink, type SinkTarget } from './sink.ts'
export { type FragmentSource, LocalSource, RemoteSource, type SourceTarget } from './source.ts'
