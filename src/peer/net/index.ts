export { DROP_REASONS, type DropReason, MAX_DATAGRAM_BYTES, open, seal } from './frame.ts'
export { Messenger, type MessengerEvents, type RequestOptions } from './messenger.ts'
export { ReplayWindow } from './replay.ts'
export { type DatagramTransport, joinAddress, MemoryNetwork, MemoryTransport, splitAddress, UdpTransport } from './transport.ts'
