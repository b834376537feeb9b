import { writeFileSync } from 'node:fs'
import { stringify } from 'yaml'
import { type K8sObject, renderChart } from '../test/helpers/helm.ts'

/**
 * The plain-YAML install for users without Helm: the chart rendered with
 * its default values into namespace `houseparty`, except that the party key,
 * the S3 admin key, the API token and the TLS certificate come from Secrets the user makes (a rendered Secret
 * would carry one fixed key for everyone) and the `helm test` pod is left out.
 * `npm run manifests` writes manifests/houseparty.yaml; a test fails when
 * the checked-in file differs from what the chart renders.
 */
export const MANIFEST_VALUES = {
  'partyKey.existingSecret': 'houseparty-party-key',
  's3.adminKey.existingSecret': 'houseparty-s3-admin',
  'apiToken.existingSecret': 'houseparty-api-token',
  'tls.existingSecret': 'houseparty-tls',
  'tests.enabled': 'false',
}

const HEADER = `# House Party, plain manifests: rendered from charts/houseparty by \`npm run manifests\`; do not edit by hand.
#
#   kubectl create namespace houseparty
#   kubectl -n houseparty create secret generic houseparty-party-key --from-literal=party-key="$(head -c 36 /dev/urandom | base64)"
#   kubectl -n houseparty create secret generic houseparty-s3-admin --from-literal=s3-access-key-id="HP$(head -c 12 /dev/urandom | base32 | tr -d =)" \
#     --from-literal=s3-secret-access-key="$(head -c 30 /dev/urandom | base64 | tr -d /+=)"
#   kubectl -n houseparty create secret generic houseparty-api-token --from-literal=api-token="$(head -c 24 /dev/urandom | base64 | tr -d /+=)"
#   houseparty certgen --out ./houseparty-tls    # a CA (keep its ca.key) and the peers' certificate for HTTPS
#   kubectl -n houseparty create secret generic houseparty-tls --from-file=./houseparty-tls/ca.crt \
#     --from-file=./houseparty-tls/tls.crt --from-file=./houseparty-tls/tls.key
#   kubectl apply -n houseparty -f manifests/houseparty.yaml
#
# Five peers, files coded 2+1, 10 GiB volumes from the default StorageClass. For other settings, use the Helm chart.
`

/** Labels that only say Helm made an object: untrue of a plain manifest. */
function withoutHelmLabels(o: K8sObject): K8sObject {
  const strip = (labels: Record<string, string> | undefined): void => {
    if (!labels) return
    delete labels['helm.sh/chart']
    labels['app.kubernetes.io/managed-by'] = 'kubectl'
  }
  strip(o.metadata.labels)
  const template = (o as { spec?: { template?: { metadata?: { labels?: Record<string, string> } } } }).spec?.template
  strip(template?.metadata?.labels)
  return o
}

export async function renderManifests(): Promise<string> {
  const objects = await renderChart({ release: 'houseparty', namespace: 'houseparty', set: MANIFEST_VALUES })
  return HEADER + objects.map((o) => `---\n${stringify(withoutHelmLabels(o), { lineWidth: 0 })}`).join('')
}

if (import.meta.main) writeFileSync(new URL('../manifests/houseparty.yaml', import.meta.url), await renderManifests())
