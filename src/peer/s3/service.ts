import type { PeerConfig } from '../../shared/config.ts'
import type { InFlight, Startable } from '../../shared/lifecycle.ts'
import type { Logger } from '../../shared/logger.ts'
import { httpComponent, type ServingCertificate } from '../api/index.ts'
import type { FileService } from '../files/index.ts'
import type { KeyStore } from '../keys/index.ts'
import type { PeerMetrics } from '../metrics/index.ts'
import { UploadExpiry } from './expiry.ts'
import { createS3Server } from './server.ts'

export interface S3ServiceOptions {
  settings: PeerConfig['s3']
  keys: KeyStore
  host: string
  files: FileService
  metrics: PeerMetrics
  logger: Logger
  /** True while this peer is a guest and not saying goodbye. */
  admitted: () => boolean
  inFlight: InFlight
  /** Served over HTTPS with it (see httpComponent). */
  certificate?: ServingCertificate | undefined
}

/** A multipart upload sweep runs at least this often, and four times per expiry when that is shorter (tests). */
const MAX_SWEEP_INTERVAL_MS = 3_600_000

/** The S3 endpoint of a peer as its lifecycle components: the HTTP server, then the sweep of expired uploads. */
export function s3Service(o: S3ServiceOptions): { http: Startable & { readonly port: number }; expiry: UploadExpiry } {
  const { settings } = o
  const http = httpComponent(
    () =>
      createS3Server({
        files: o.files,
        keys: o.keys,
        region: settings.region,
        domain: settings.domain,
        metrics: o.metrics,
        logger: o.logger,
        admitted: o.admitted,
        inFlight: o.inFlight,
      }),
    o.host,
    settings.port,
    o.certificate,
  )
  const intervalMs = Math.min(MAX_SWEEP_INTERVAL_MS, settings.uploadExpiryMs / 4)
  const expiry = new UploadExpiry(o.files, { expiryMs: settings.uploadExpiryMs, intervalMs }, o.admitted, o.logger)
  return { http, expiry }
}
