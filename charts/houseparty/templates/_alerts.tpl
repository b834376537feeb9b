{{/*
House Party's alerts, scoped to this release's peers. The PrometheusRule template
uses them; the tests render them for promtool and a real Prometheus.
*/}}
{{- define "houseparty.alertRules" -}}
{{- $sel := printf "job=\"%s\",namespace=\"%s\"" (include "houseparty.peersService" .) .Release.Namespace -}}
- name: houseparty
  rules:
    - alert: HousePartyFilesLost
      expr: sum(houseparty_files_lost{ {{- $sel -}} }) > 0
      for: 1m
      labels:
        severity: critical
      annotations:
        summary: House Party has files with fewer than k usable fragments
        description: '{{ "{{" }} $value {{ "}}" }} files cannot be read until a peer holding their fragments comes back. Check which peers are down (GET /guests, GET /health/party).'
    - alert: HousePartyDegraded
      expr: sum(houseparty_files_degraded{ {{- $sel -}} }) > 0
      for: {{ .Values.metrics.prometheusRule.degradedFor }}
      labels:
        severity: warning
      annotations:
        summary: House Party files have been below full redundancy for {{ .Values.metrics.prometheusRule.degradedFor }}
        description: '{{ "{{" }} $value {{ "}}" }} files have fewer than k+m usable fragments and recovery has not restored them. Another peer lost now could make them unreadable.'
    - alert: HousePartyFilesAtRisk
      expr: max by (domain) (houseparty_files_at_risk{ {{- $sel -}},domain=~"node|zone"}) > 0
      for: 15m
      labels:
        severity: warning
      annotations:
        summary: Losing one House Party {{ "{{" }} $labels.domain {{ "}}" }} would make files unreadable
        description: 'At least {{ "{{" }} $value {{ "}}" }} readable files would become unreadable if the worst single {{ "{{" }} $labels.domain {{ "}}" }} were lost now: their fragments share it more than the coding survives (too few nodes or zones for the coding, peers crowded on one node), or they are down to k fragments. `houseparty health` names the domain; add nodes or zones, or spread the peers (topology.whenUnsatisfiable).'
    - alert: HousePartyGuestsDropped
      expr: min(houseparty_guests{ {{- $sel -}} }) < max(max_over_time(houseparty_guests{ {{- $sel -}} }[15m]))
      for: 5m
      labels:
        severity: warning
      annotations:
        summary: House Party has fewer guests than it had in the last 15 minutes
        description: 'The party is down to {{ "{{" }} $value {{ "}}" }} guests. Peers were voted out or left; if this is not a scale-down, check the pods.'
    - alert: HousePartyWrongKeyDatagrams
      expr: sum(rate(houseparty_udp_datagrams_dropped_total{ {{- $sel -}},reason="mac"}[5m])) > 0.1
      for: 10m
      labels:
        severity: warning
      annotations:
        summary: House Party peers are receiving datagrams under another party key
        description: 'Datagrams failing their MAC arrive at {{ "{{" }} $value | humanize {{ "}}" }}/s: a peer runs with the wrong party key, or something probes the peer port.'
    - alert: HousePartyPeerNotAdmitted
      expr: max by (pod) (houseparty_admitted{ {{- $sel -}} }) == 0
      for: 10m
      labels:
        severity: warning
      annotations:
        summary: A House Party peer has not been a guest of the party for 10 minutes
        description: '{{ "{{" }} $labels.pod {{ "}}" }} keeps knocking without being admitted. Check its log (wrong key, no door reachable, or a party without a quorum).'
{{- end -}}
