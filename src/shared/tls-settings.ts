/** TLS on the HTTP API and the S3 endpoint, and encryption at rest (a part of PEER_SETTINGS). */
export const TLS_SETTINGS = [
  {
    key: 'tls.certFile',
    flag: '--tls-cert-file',
    env: 'HOUSEPARTY_TLS_CERT_FILE',
    kind: 'string',
    default: '',
    description:
      'PEM certificate (with its chain) the HTTP API and the S3 endpoint serve over HTTPS, with --tls-key-file (a Kubernetes TLS Secret: tls.crt). Read again every 5 s: a renewed certificate is served to new connections without a restart. Empty: plain HTTP.',
  },
  {
    key: 'tls.keyFile',
    flag: '--tls-key-file',
    env: 'HOUSEPARTY_TLS_KEY_FILE',
    kind: 'string',
    default: '',
    description: 'PEM private key of --tls-cert-file (tls.key). Both or neither.',
  },
  {
    key: 'atRest.keyFile',
    flag: '--at-rest-key-file',
    env: 'HOUSEPARTY_AT_REST_KEY_FILE',
    kind: 'string',
    default: '',
    description:
      'Encrypt fragments on disk (AES-256-GCM per chunk) under a data key of this volume, kept wrapped by the key in this file (a Kubernetes Secret; at least 32 characters). Several lines: the first wraps, the others only unwrap (rotation: add the new key first, restart; the data key is re-wrapped, no fragment rewritten). Empty: fragments are stored in clear; a volume whose data key is wrapped refuses to start without it.',
  },
] as const
