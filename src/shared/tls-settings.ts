/** TLS on the HTTP API and the S3 endpoint (a part of PEER_SETTINGS). */
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
] as const
