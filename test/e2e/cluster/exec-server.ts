import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'

/**
 * The test kubelet's exec endpoint (test infrastructure): what
 * `kubectl exec` and client-node's Exec reach through the API server. The
 * API server proxies the client's websocket upgrade to
 * https://NODE:PORT/exec/NAMESPACE/POD/CONTAINER?command=…, as it does to a
 * real kubelet; this answers in the v4.channel.k8s.io protocol (one byte of
 * channel, then data: 1 stdout, 2 stderr, 3 the final Status as JSON) and
 * runs the command inside the container's namespaces (nsenter), with its
 * environment.
 */
export interface ExecTarget {
  /** A process in the container: its network, mount and UTS namespaces are entered. */
  pid: number
  env: Record<string, string>
}

export interface ExecServer {
  port: number
  close: () => Promise<void>
}

const PROTOCOL = 'v4.channel.k8s.io'

export async function startExecServer(options: {
  cert: string
  key: string
  find: (namespace: string, pod: string, container: string) => ExecTarget | undefined
  log: (line: string) => void
}): Promise<ExecServer> {
  const server: Server = createServer({ cert: await readFile(options.cert), key: await readFile(options.key) }, (_req, res) => {
    res.writeHead(400).end('exec needs a websocket upgrade\n')
  })
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => (offered.has(PROTOCOL) ? PROTOCOL : false) })
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'https://kubelet')
    const m = /^\/exec\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname)
    const target = m ? options.find(m[1] as string, m[2] as string, m[3] as string) : undefined
    const command = url.searchParams.getAll('command')
    if (!m || !target || command.length === 0) {
      socket.end(`HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n`)
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      options.log(`exec in ${m[1]}/${m[2]}: ${command.join(' ')}`)
      const send = (channel: number, data: Buffer): void => {
        if (ws.readyState === ws.OPEN) ws.send(Buffer.concat([Buffer.of(channel), data]))
      }
      const proc = spawn('nsenter', ['--target', String(target.pid), '--net', '--mount', '--uts', '--', ...command], {
        env: target.env,
        cwd: '/',
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      proc.stdout.on('data', (d: Buffer) => send(1, d))
      proc.stderr.on('data', (d: Buffer) => send(2, d))
      const finish = (status: object): void => {
        send(3, Buffer.from(JSON.stringify({ metadata: {}, ...status })))
        ws.close(1000)
      }
      proc.on('error', (err) => finish({ status: 'Failure', message: err.message }))
      proc.on('close', (code, signal) => {
        if (code === 0) return finish({ status: 'Success' })
        const exit = code ?? 128
        finish({
          status: 'Failure',
          message: `command terminated with non-zero exit code: ${signal ? `signal ${signal}` : `exit status ${exit}`}`,
          reason: 'NonZeroExitCode',
          details: { causes: [{ reason: 'ExitCode', message: String(exit) }] },
        })
      })
      ws.on('close', () => {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
      })
    })
  })
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready))
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((done) => {
        for (const c of wss.clients) c.terminate()
        server.closeAllConnections()
        server.close(() => done())
      }),
  }
}
