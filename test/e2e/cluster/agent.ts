import { rmSync } from 'node:fs'
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { connect, createServer as createTcpServer } from 'node:net'

/**
 * Runs inside the test cluster's bridge namespace (test infrastructure):
 * an HTTP forward proxy on a unix socket. The machine's own namespace must
 * never send to a private address, so the test kubelet's probes and the
 * tests' requests reach pods through here: a request's Host header (or its
 * absolute URL) names the pod or Service, resolved by the cluster's DNS.
 * An https:// URL is fetched over TLS, the certificate checked against the
 * CA in x-agent-ca (base64 PEM) and the URL's host name, or not at all with
 * x-agent-insecure (as a kubelet's HTTPS probes do).
 *
 * With API_SOCKET and API_LISTEN (ip:port), it also carries pods' connections
 * to the API server: TCP on the bridge to a unix socket the harness serves
 * in the machine's namespace, which connects on to the API server on
 * loopback. Nothing in the machine's namespace sends to a pod's address.
 *
 *   ip netns exec NS node agent.ts /path/to/agent.sock [API_SOCKET API_LISTEN]
 */
const [socketPath, apiSocket, apiListen] = process.argv.slice(2)
if (!socketPath) {
  console.error('usage: agent.ts SOCKET [API_SOCKET API_LISTEN]')
  process.exit(2)
}
if (apiSocket && apiListen) {
  const [host, port] = apiListen.split(':') as [string, string]
  createTcpServer((pod) => {
    const upstream = connect(apiSocket)
    pod.pipe(upstream).pipe(pod)
    pod.on('error', () => upstream.destroy())
    upstream.on('error', () => pod.destroy())
  }).listen(Number(port), host)
}
rmSync(socketPath, { force: true })

function forward(req: IncomingMessage, res: ServerResponse): void {
  let target: URL
  try {
    target = /^https?:\/\//.test(req.url ?? '') ? new URL(req.url as string) : new URL(req.url ?? '/', `http://${req.headers.host}`)
  } catch {
    res.writeHead(400).end('bad target')
    return
  }
  const timeout = Number(req.headers['x-agent-timeout-ms'] ?? 120_000)
  const headers = { ...req.headers }
  const ca = headers['x-agent-ca'] ? Buffer.from(String(headers['x-agent-ca']), 'base64').toString() : undefined
  const insecure = headers['x-agent-insecure'] !== undefined
  delete headers['x-agent-timeout-ms']
  delete headers['x-agent-ca']
  delete headers['x-agent-insecure']
  const https = target.protocol === 'https:'
  const tls = https ? { ...(ca ? { ca } : {}), rejectUnauthorized: !insecure } : {}
  const bodiless = req.method === 'GET' || req.method === 'HEAD'
  const send = (fresh: boolean): void => {
    const upstream = (https ? httpsRequest : httpRequest)(
      {
        ...tls,
        host: target.hostname,
        port: target.port || (https ? 443 : 80),
        path: `${target.pathname}${target.search}`,
        method: req.method,
        headers,
        timeout,
        ...(fresh ? { agent: false } : {}),
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    upstream.on('timeout', () => upstream.destroy(new Error(`no answer from ${target.host} within ${timeout} ms`)))
    upstream.on('error', (err) => {
      // A kept-alive connection the server closed just as this request went out (EPIPE, ECONNRESET): the request
      // never reached it, so a bodiless one is sent once more on a new connection, as HTTP clients do.
      if (!fresh && bodiless && upstream.reusedSocket && !res.headersSent) return send(true)
      // A header carries visible ASCII only: an error message with a newline or a non-ASCII character in it (from
      // the TLS layer, say) made writeHead throw, which ended this agent and cut every pod off the API server.
      if (!res.headersSent) res.writeHead(502, { 'x-agent-error': err.message.replace(/[^\t\x20-\x7e]/g, ' ').slice(0, 200) }).end(err.message)
      else res.destroy(err)
    })
    if (bodiless) upstream.end()
    else req.pipe(upstream)
    res.on('close', () => upstream.destroy())
  }
  send(false)
}

const server = createServer(forward)
server.keepAliveTimeout = 1_000
server.listen(socketPath, () => process.stdout.write('ready\n'))
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    server.close()
    rmSync(socketPath, { force: true })
    process.exit(0)
  })
}
