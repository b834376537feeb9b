import { createServer } from 'node:net'

/** A TCP server that discards what it receives: the loopback reference of the files bench. Prints its port. */
const server = createServer((socket) => {
  socket.on('data', () => {})
  socket.on('error', () => {})
})
server.listen(0, '127.0.0.1', () => {
  const addr = server.address()
  process.stdout.write(`${typeof addr === 'object' && addr ? addr.port : 0}\n`)
})
