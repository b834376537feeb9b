export { serveDrop, serveFetch, serveHold, serveInventory, type TransferEvents } from './handlers.ts'
export { FragmentSink, type SinkTarget } from './sink.ts'
export { FragmentSource, type SourceTarget } from './source.ts'
