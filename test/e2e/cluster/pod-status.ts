import { request } from 'node:http'
import type { V1Container, V1Pod, V1Probe } from '@kubernetes/client-node'
import { BRIDGE_IP } from './netns.ts'

/** What the status of a pod run says: its spec, process, restarts, exit and readiness (test infrastructure). */
export interface ReportedRun {
  pod: V1Pod
  net?: { ns: string; ip: string }
  running: boolean
  restarts: number
  startedAt?: string
  started: boolean
  ready: boolean
  exitCode?: number | null
  restartAt?: number
}

/** What a pod's status says of its one container's process, as a kubelet reports it. */
export function podStatus(run: ReportedRun) {
  const pod = run.pod
  const c = pod.spec?.containers[0] as V1Container
  const running = run.running
  const policy = pod.spec?.restartPolicy ?? 'Always'
  const finished = !running && run.exitCode !== undefined && run.exitCode !== null && run.restartAt === undefined && policy !== 'Always'
  // Running once a container has run (also between crash-loop restarts); Pending while it is being set up.
  const hasRun = running || (run.exitCode !== undefined && run.exitCode !== null)
  const phase = finished ? (run.exitCode === 0 ? 'Succeeded' : 'Failed') : hasRun ? 'Running' : 'Pending'
  const ready = running && run.ready
  const state = running
    ? { running: { startedAt: run.startedAt } }
    : run.exitCode !== undefined && run.exitCode !== null
      ? run.restartAt !== undefined
        ? { waiting: { reason: 'CrashLoopBackOff' } }
        : { terminated: { exitCode: run.exitCode, reason: run.exitCode === 0 ? 'Completed' : 'Error' } }
      : { waiting: { reason: 'ContainerCreating' } }
  return {
    phase,
    hostIP: BRIDGE_IP,
    podIP: run.net?.ip,
    podIPs: run.net ? [{ ip: run.net.ip }] : [],
    startTime: pod.status?.startTime ?? run.startedAt,
    conditions: [
      { type: 'PodScheduled', status: 'True' },
      { type: 'Initialized', status: 'True' },
      { type: 'ContainersReady', status: ready ? 'True' : 'False' },
      { type: 'Ready', status: ready ? 'True' : 'False' },
    ],
    containerStatuses: [{ name: c.name, image: c.image, imageID: '', ready, restartCount: run.restarts, started: running && run.started, state }],
  }
}

/** The test node's status: plenty of room, Ready, the exec endpoint at `execPort`. */
export function nodeStatus(execPort: number, now: string) {
  return {
    capacity: { cpu: '32', memory: '64Gi', pods: '250', 'ephemeral-storage': '100Gi' },
    allocatable: { cpu: '32', memory: '64Gi', pods: '250', 'ephemeral-storage': '100Gi' },
    // ExternalIP is where the API server (on this machine's loopback) reaches the exec endpoint; pods see the node at InternalIP.
    addresses: [
      { type: 'InternalIP', address: BRIDGE_IP },
      { type: 'ExternalIP', address: '127.0.0.1' },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: execPort } },
    conditions: [
      { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'houseparty test kubelet', lastHeartbeatTime: now, lastTransitionTime: now },
    ],
    nodeInfo: {
      architecture: 'amd64',
      bootID: '',
      containerRuntimeVersion: 'houseparty-test://0',
      kernelVersion: '',
      kubeProxyVersion: '',
      kubeletVersion: 'v1.20.2',
      machineID: '',
      operatingSystem: 'linux',
      osImage: 'houseparty test node',
      systemUUID: '',
    },
  }
}

/** An httpGet probe of a pod, sent through the agent in the bridge namespace (the pod's IP is only reachable there). */
export function httpProbe(agentSocket: string, ip: string, c: V1Container, spec: V1Probe): Promise<boolean> {
  const get = spec.httpGet
  if (!get) return Promise.resolve(true)
  const port = typeof get.port === 'number' ? get.port : (c.ports?.find((p) => p.name === get.port)?.containerPort ?? Number(get.port))
  const timeoutMs = (spec.timeoutSeconds ?? 1) * 1000
  return new Promise((done) => {
    const req = request(
      {
        socketPath: agentSocket,
        // An HTTPS probe, like a kubelet's, does not check the certificate.
        path: `${get.scheme === 'HTTPS' ? 'https' : 'http'}://${ip}:${port}${get.path ?? '/'}`,
        headers: { 'x-agent-timeout-ms': String(timeoutMs), ...(get.scheme === 'HTTPS' ? { 'x-agent-insecure': '1' } : {}) },
        timeout: timeoutMs + 500,
      },
      (res) => {
        res.resume()
        done((res.statusCode ?? 500) >= 200 && (res.statusCode ?? 500) < 400)
      },
    )
    req.on('timeout', () => req.destroy())
    req.on('error', () => done(false))
    req.end()
  })
}

/** Writes the pod's status to the API when it changed (or `force`). */
