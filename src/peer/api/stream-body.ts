import type { OutgoingHttpHeaders } from 'node:http'
import type { FastifyReply } from 'fastify'
import type { OpenedFile } from '../files/index.ts'

/**
 * Writes a file's body to the socket itself rather than through
 * reply.send(stream), so that each piece is handed back for reuse once the
 * socket has taken it (write's callback): a large get then reads into the
 * same few buffers instead of a fresh one per chunk. The status and headers
 * are the reply's; a body that fails mid-way (a holder lost, the content hash
 * not matching) ends the connection short, as a stream sent by Fastify does.
 */
export async function streamBody(reply: FastifyReply, opened: OpenedFile, closing: boolean): Promise<void> {
  const res = reply.raw
  const headers = reply.getHeaders()
  // What the server's onSend hook adds for a leaving peer, which a hijacked reply skips.
  if (closing) headers.connection = 'close'
  reply.hijack()
  res.writeHead(reply.statusCode, headers as OutgoingHttpHeaders)
  const recycle = opened.recycle
  try {
    for await (const piece of opened.body) {
      if (res.destroyed) break
      const room = res.write(piece, (err) => {
        if (!err) recycle?.(piece)
      })
      if (!room) await drainedOrClosed(res)
    }
    res.end()
  } catch (err) {
    // A client that went away aborts the read: nothing to report then.
    if (!res.destroyed) reply.log.warn({ err: (err as Error).message, name: opened.record.name }, 'a get ended short')
    res.destroy()
  } finally {
    await opened.body.return(undefined)
  }
}

function drainedOrClosed(res: FastifyReply['raw']): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.once('drain', done)
    res.once('close', done)
  })
}
