{{/* Names and labels. */}}
{{- define "cachegate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cachegate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cachegate.labels" -}}
{{ include "cachegate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/*
cachegate's configuration file: the values' `config` (or `configText`, verbatim), with the admin
endpoint the probes use and drain_timeout added unless it sets them itself.
*/}}
{{- define "cachegate.config" -}}
{{- if .Values.configText -}}
{{- /* Verbatim, so numbers keep their exact form; the two keys appended unless present. */ -}}
{{- .Values.configText | trim }}
{{- if not (regexMatch "(?m)^admin:" .Values.configText) }}
admin:
  listen: "0.0.0.0:{{ .Values.admin.port }}"
  {{- if .Values.admin.tokenSecret.name }}
  token_file: /etc/cachegate/admin-token/{{ .Values.admin.tokenSecret.key }}
  {{- end }}
{{- end }}
{{- if not (regexMatch "(?m)^drain_timeout:" .Values.configText) }}
drain_timeout: {{ int .Values.drainTimeoutMs }}
{{- end }}
{{- else -}}
{{- $config := deepCopy .Values.config -}}
{{- if not (hasKey $config "admin") -}}
{{- $admin := dict "listen" (printf "0.0.0.0:%v" .Values.admin.port) -}}
{{- if .Values.admin.tokenSecret.name -}}
{{- $_ := set $admin "token_file" (printf "/etc/cachegate/admin-token/%s" .Values.admin.tokenSecret.key) -}}
{{- end -}}
{{- $_ := set $config "admin" $admin -}}
{{- end -}}
{{- if not (hasKey $config "drain_timeout") -}}
{{- $_ := set $config "drain_timeout" (int .Values.drainTimeoutMs) -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}
{{- end -}}

{{/* The listeners of the configuration, from whichever form it is given in. */}}
{{- define "cachegate.listeners" -}}
{{- $config := .Values.config -}}
{{- if .Values.configText -}}
{{- $config = .Values.configText | fromYaml -}}
{{- end -}}
{{- toYaml (dict "listeners" $config.listeners) -}}
{{- end -}}

{{/* The port a listen address ends with ("0.0.0.0:11211", "[::]:6379"). */}}
{{- define "cachegate.listenPort" -}}
{{- splitList ":" . | last -}}
{{- end -}}

{{/* A listener's name as a port name: lowercase, at most 15 characters. */}}
{{- define "cachegate.portName" -}}
{{- . | lower | replace "_" "-" | trunc 15 | trimSuffix "-" -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: the preStop wait, the drain, and 5 s to spare. */}}
{{- define "cachegate.gracePeriod" -}}
{{- add (int .Values.preStopSleepSeconds) (div (add (int .Values.drainTimeoutMs) 999) 1000) 5 -}}
{{- end -}}

{{/* Pod annotations: scraping, and checksums that roll the pods on change without hot reload. */}}
{{- define "cachegate.podAnnotations" -}}
{{- if .Values.metrics.annotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.admin.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- if not .Values.hotReload }}
checksum/config: {{ include "cachegate.config" . | sha256sum }}
{{- if .Values.secrets.create }}
checksum/secret: {{ toYaml .Values.secrets.files | sha256sum }}
{{- end }}
{{- end }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The cachegate container, for this chart's Deployment and for an application's pod (sidecar):
  containers:
    - name: app
      …
    {{- include "cachegate.sidecar.container" . | nindent 4 }}
*/}}
{{- define "cachegate.sidecar.container" -}}
- name: cachegate
  image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["-c", "/etc/cachegate/config/cachegate.yaml"]
  ports:
    {{- range (include "cachegate.listeners" . | fromYaml).listeners }}
    - name: {{ include "cachegate.portName" .name }}
      containerPort: {{ include "cachegate.listenPort" .listen }}
      protocol: TCP
    {{- end }}
    - name: admin
      containerPort: {{ .Values.admin.port }}
      protocol: TCP
  livenessProbe:
    httpGet: {path: /healthz, port: admin}
    periodSeconds: 10
    failureThreshold: 3
  readinessProbe:
    httpGet: {path: /readyz, port: admin}
    periodSeconds: 5
    failureThreshold: 2
  {{- if gt (int .Values.preStopSleepSeconds) 0 }}
  lifecycle:
    preStop:
      exec:
        command: ["sleep", "{{ .Values.preStopSleepSeconds }}"]
  {{- end }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: cachegate-config
      mountPath: /etc/cachegate/config
      readOnly: true
    {{- if .Values.secrets.create }}
    - name: cachegate-secrets
      mountPath: /etc/cachegate/secrets
      readOnly: true
    {{- end }}
    {{- range .Values.secrets.existing }}
    - name: secret-{{ .name }}
      mountPath: /etc/cachegate/{{ .name }}
      readOnly: true
    {{- end }}
    {{- if .Values.certManager.enabled }}
    - name: cachegate-tls
      mountPath: /etc/cachegate/tls
      readOnly: true
    {{- end }}
    {{- if .Values.admin.tokenSecret.name }}
    - name: cachegate-admin-token
      mountPath: /etc/cachegate/admin-token
      readOnly: true
    {{- end }}
{{- end -}}

{{/*
The volumes the cachegate container mounts, for the same pod:
  volumes:
    {{- include "cachegate.sidecar.volumes" . | nindent 4 }}
*/}}
{{- define "cachegate.sidecar.volumes" -}}
- name: cachegate-config
  configMap:
    name: {{ include "cachegate.fullname" . }}
{{- if .Values.secrets.create }}
- name: cachegate-secrets
  secret:
    secretName: {{ include "cachegate.fullname" . }}
{{- end }}
{{- range .Values.secrets.existing }}
- name: secret-{{ .name }}
  secret:
    secretName: {{ .name }}
{{- end }}
{{- if .Values.certManager.enabled }}
- name: cachegate-tls
  secret:
    secretName: {{ include "cachegate.fullname" . }}-tls
{{- end }}
{{- if .Values.admin.tokenSecret.name }}
- name: cachegate-admin-token
  secret:
    secretName: {{ .Values.admin.tokenSecret.name }}
{{- end }}
{{- end -}}
