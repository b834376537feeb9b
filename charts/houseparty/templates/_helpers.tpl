{{/* Names and labels: every template takes them from here. */}}

{{- define "houseparty.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "houseparty.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The headless Service the peers join through; each pod's stable DNS name hangs off it. */}}
{{- define "houseparty.peersService" -}}
{{- printf "%s-peers" (include "houseparty.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "houseparty.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "houseparty.selectorLabels" -}}
app.kubernetes.io/name: {{ include "houseparty.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "houseparty.labels" -}}
helm.sh/chart: {{ include "houseparty.chart" . }}
{{ include "houseparty.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: houseparty
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "houseparty.annotations" -}}
{{- with .Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "houseparty.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The Secret with the party key (and API token): the user's, or the one the chart keeps. */}}
{{- define "houseparty.keySecret" -}}
{{- default (include "houseparty.fullname" .) .Values.partyKey.existingSecret -}}
{{- end -}}

{{- define "houseparty.tokenSecret" -}}
{{- default (include "houseparty.fullname" .) .Values.apiToken.existingSecret -}}
{{- end -}}

{{- define "houseparty.atRestSecret" -}}
{{- default (include "houseparty.fullname" .) .Values.encryptionAtRest.existingSecret -}}
{{- end -}}

{{- define "houseparty.s3Secret" -}}
{{- default (include "houseparty.fullname" .) .Values.s3.adminKey.existingSecret -}}
{{- end -}}

{{/* The Secret with the API and S3 endpoint's certificate: the user's, or the one the chart or cert-manager fills. */}}
{{- define "houseparty.tlsSecret" -}}
{{- default (printf "%s-tls" (include "houseparty.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{/* The names clients reach the API and the S3 endpoint by: the client Service, each peer, localhost (a port-forward), the S3 domain. */}}
{{- define "houseparty.dnsNames" -}}
{{- $full := include "houseparty.fullname" . -}}
{{- $peers := include "houseparty.peersService" . -}}
{{- $ns := .Release.Namespace -}}
{{- $names := list $full (printf "%s.%s" $full $ns) (printf "%s.%s.svc" $full $ns) (printf "%s.%s" $full (include "houseparty.domain" .)) -}}
{{- $names = concat $names (list (printf "*.%s.%s.svc" $peers $ns) (printf "*.%s.%s" $peers (include "houseparty.domain" .)) "localhost") -}}
{{- with .Values.s3.domain -}}{{- $names = concat $names (list . (printf "*.%s" .)) -}}{{- end -}}
{{- concat $names .Values.tls.extraDnsNames | toJson -}}
{{- end -}}

{{/* The certificate's source: existing, certManager or selfSigned. */}}
{{- define "houseparty.tlsSource" -}}
{{- if .Values.tls.existingSecret -}}existing{{- else if .Values.tls.certManager.issuerRef.name -}}certManager{{- else -}}selfSigned{{- end -}}
{{- end -}}

{{- define "houseparty.scheme" -}}
{{- if .Values.tls.enabled -}}https{{- else -}}http{{- end -}}
{{- end -}}

{{- define "houseparty.domain" -}}
{{- printf "%s.svc.%s" .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{- define "houseparty.terminationGracePeriodSeconds" -}}
{{- if .Values.terminationGracePeriodSeconds -}}
{{- .Values.terminationGracePeriodSeconds -}}
{{- else -}}
{{- add (div (int .Values.leaveGraceMs) 1000) 15 -}}
{{- end -}}
{{- end -}}

{{- define "houseparty.maxUnavailable" -}}
{{- if eq (toString .Values.podDisruptionBudget.maxUnavailable) "" -}}
{{- .Values.coding.parityFragments -}}
{{- else -}}
{{- .Values.podDisruptionBudget.maxUnavailable -}}
{{- end -}}
{{- end -}}

{{/* Values that cannot work are refused at install time, with the reason. */}}
{{- define "houseparty.validate" -}}
{{- $k := int .Values.coding.dataFragments -}}
{{- $m := int .Values.coding.parityFragments -}}
{{- if lt $k 1 -}}
{{- fail "coding.dataFragments (k) must be at least 1" -}}
{{- end -}}
{{- if lt $m 0 -}}
{{- fail "coding.parityFragments (m) must be at least 0" -}}
{{- end -}}
{{- if lt (int .Values.replicaCount) (add $k $m) -}}
{{- fail (printf "replicaCount (%d) must be at least coding.dataFragments + coding.parityFragments (%d + %d = %d): every file needs k+m peers" (int .Values.replicaCount) $k $m (add $k $m)) -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled (gt (int (include "houseparty.maxUnavailable" .)) $m) -}}
{{- fail (printf "podDisruptionBudget.maxUnavailable (%s) must not exceed coding.parityFragments (%d): more peers down at once than m can make files unreadable" (include "houseparty.maxUnavailable" .) $m) -}}
{{- end -}}
{{- if and (not .Values.apiToken.enabled) (not .Values.auth.disabled) -}}
{{- fail "apiToken.enabled=false lets anything that reaches the Service read, write and delete every file: set auth.disabled=true as well to mean it" -}}
{{- end -}}
{{- if and .Values.tls.existingSecret .Values.tls.certManager.issuerRef.name -}}
{{- fail "tls.existingSecret and tls.certManager.issuerRef.name both name the certificate's source: set one" -}}
{{- end -}}
{{- if not (has .Values.onStop (list "auto" "handoff" "restart")) -}}
{{- fail (printf "onStop (%v) must be auto, handoff or restart" .Values.onStop) -}}
{{- end -}}
{{- if lt (int (include "houseparty.terminationGracePeriodSeconds" .)) (div (int .Values.leaveGraceMs) 1000) -}}
{{- fail "terminationGracePeriodSeconds must be above leaveGraceMs (in seconds): a peer must have time to hand its data off before it is killed" -}}
{{- end -}}
{{- end -}}

{{/* "true" when peers read their zone and region from their Node's labels (and so need the ClusterRole). */}}
{{- define "houseparty.readsNode" -}}
{{- and .Values.topology.fromNodeLabels (not .Values.topology.zone) -}}
{{- end -}}
