import { existsSync } from 'node:fs'
import { mkdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { CoreV1Api, V1Container, V1Pod, V1Volume } from '@kubernetes/client-node'
import type { ImageConfig } from './image.ts'
import { API_PORT_ON_BRIDGE, BRIDGE_IP } from './netns.ts'

/** A host directory bind-mounted into a container. */
export interface Mount {
  from: string
  to: string
  readOnly: boolean
}

/**
 * The test kubelet's volumes (test infrastructure): a PersistentVolumeClaim
 * is the directory of the PersistentVolume bound to it, a Secret or
 * ConfigMap is written out as files, an emptyDir is a fresh directory.
 * Mount points missing on the machine are made, and removed by cleanup().
 */
export class PodVolumes {
  readonly #core: CoreV1Api
  readonly #dir: string
  /** Host directories made as mount points (absent on the machine before). */
  readonly #madeDirs = new Set<string>()

  constructor(core: CoreV1Api, dir: string) {
    this.#core = core
    this.#dir = dir
  }

  /** The host directories to bind-mount for `container`'s volumes; undefined while a claim is not bound yet. */
  async volumes(pod: V1Pod, uid: string, container: V1Container): Promise<Mount[] | undefined> {
    const namespace = pod.metadata?.namespace as string
    const podDir = join(this.#dir, 'pods', uid)
    const out: Mount[] = []
    for (const mount of container.volumeMounts ?? []) {
      const volume = pod.spec?.volumes?.find((v) => v.name === mount.name)
      if (!volume) continue
      let from: string
      if (volume.persistentVolumeClaim) {
        const claim = await this.#core.readNamespacedPersistentVolumeClaim({ name: volume.persistentVolumeClaim.claimName, namespace })
        if (claim.status?.phase !== 'Bound' || !claim.spec?.volumeName) return undefined
        const pv = await this.#core.readPersistentVolume({ name: claim.spec.volumeName })
        from = pv.spec?.hostPath?.path as string
      } else if (volume.secret || volume.configMap) {
        from = join(podDir, 'volumes', mount.name)
        await rm(from, { recursive: true, force: true })
        await mkdir(from, { recursive: true })
        await this.#writeSource(from, volume, namespace)
      } else if (volume.emptyDir) {
        from = join(podDir, 'volumes', mount.name)
        await mkdir(from, { recursive: true })
      } else continue
      await this.#mountPoint(mount.mountPath)
      out.push({ from, to: mount.mountPath, readOnly: mount.readOnly === true })
    }
    return out
  }

  /**
   * Writes a Secret's or ConfigMap's keys into `dir`, each file replaced
   * whole (written aside, then renamed) and only when it changed: as a
   * kubelet's atomic writer, a reader sees the old file or the new one.
   */
  async #writeSource(dir: string, volume: V1Volume, namespace: string): Promise<void> {
    const data = volume.secret
      ? Object.fromEntries(
          Object.entries((await this.#core.readNamespacedSecret({ name: volume.secret.secretName as string, namespace })).data ?? {}).map(([k, v]) => [
            k,
            Buffer.from(v, 'base64'),
          ]),
        )
      : Object.fromEntries(
          Object.entries((await this.#core.readNamespacedConfigMap({ name: volume.configMap?.name as string, namespace })).data ?? {}).map(([k, v]) => [
            k,
            Buffer.from(v),
          ]),
        )
    const items = (volume.secret ?? volume.configMap)?.items
    for (const [k, v] of Object.entries(data)) {
      const path = items ? items.find((i) => i.key === k)?.path : k
      if (!path) continue
      const file = join(dir, path)
      if (existsSync(file) && (await readFile(file)).equals(v)) continue
      await writeFile(`${file}.new`, v, { mode: 0o644 })
      await rename(`${file}.new`, file)
    }
  }

  /** Brings a running pod's Secret and ConfigMap volumes up to date, as a kubelet's periodic sync does (a rotated certificate reaches the pod). */
  async refresh(pod: V1Pod, uid: string): Promise<void> {
    const namespace = pod.metadata?.namespace as string
    for (const volume of pod.spec?.volumes ?? []) {
      if (!volume.secret && !volume.configMap) continue
      const dir = join(this.#dir, 'pods', uid, 'volumes', volume.name)
      if (existsSync(dir)) await this.#writeSource(dir, volume, namespace).catch(() => undefined)
    }
  }

  /** Makes a missing mount point on the machine (a container's /data), remembering to remove it at the end. */
  async #mountPoint(path: string): Promise<void> {
    let top: string | undefined
    for (let p = path; p !== '/' && !existsSync(p); p = dirname(p)) top = p
    if (!top) return
    await mkdir(path, { recursive: true })
    for (let p = path; ; p = dirname(p)) {
      this.#madeDirs.add(p)
      if (p === top) break
    }
  }

  /** Removes the mount points it made, deepest first. */
  async cleanup(): Promise<void> {
    for (const d of [...this.#madeDirs].sort((a, b) => b.length - a.length)) await rmdir(d).catch(() => undefined)
  }
}

/** A container's environment as a kubelet makes it: the image's, the downward API, Secrets and ConfigMaps. */
export async function containerEnv(core: CoreV1Api, image: ImageConfig, pod: V1Pod, container: V1Container, podIp: string): Promise<Record<string, string>> {
  const namespace = pod.metadata?.namespace as string
  const env: Record<string, string> = {
    ...image.env,
    PATH: `${image.binDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: '/tmp',
    // As a kubelet does: where in-cluster clients find the API server (the agent forwards it from the bridge).
    KUBERNETES_SERVICE_HOST: BRIDGE_IP,
    KUBERNETES_SERVICE_PORT: String(API_PORT_ON_BRIDGE),
  }
  const field = (path: string): string => {
    const labels = /^metadata\.labels\['(.+)'\]$/.exec(path)
    if (labels) return pod.metadata?.labels?.[labels[1] as string] ?? ''
    const values: Record<string, string | undefined> = {
      'metadata.name': pod.metadata?.name,
      'metadata.namespace': namespace,
      'metadata.uid': pod.metadata?.uid,
      'spec.nodeName': pod.spec?.nodeName,
      'spec.serviceAccountName': pod.spec?.serviceAccountName,
      'status.podIP': podIp,
      'status.hostIP': BRIDGE_IP,
    }
    return values[path] ?? ''
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) {
      // $(VAR) refers to a variable defined earlier; $$ escapes a dollar.
      env[e.name] = e.value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v: string | undefined) => (v === undefined ? '$' : (env[v] ?? m)))
    } else if (e.valueFrom?.fieldRef) env[e.name] = field(e.valueFrom.fieldRef.fieldPath)
    else if (e.valueFrom?.secretKeyRef) {
      const secret = await core.readNamespacedSecret({ name: e.valueFrom.secretKeyRef.name as string, namespace })
      const value = secret.data?.[e.valueFrom.secretKeyRef.key]
      if (value !== undefined) env[e.name] = Buffer.from(value, 'base64').toString()
    } else if (e.valueFrom?.configMapKeyRef) {
      const map = await core.readNamespacedConfigMap({ name: e.valueFrom.configMapKeyRef.name as string, namespace })
      const value = map.data?.[e.valueFrom.configMapKeyRef.key]
      if (value !== undefined) env[e.name] = value
    }
  }
  return env
}
