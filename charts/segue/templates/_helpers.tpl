{{/* Names ------------------------------------------------------------------ */}}
{{- define "segue.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "segue.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels: common ones, and the selector of one component (dict "root" $ "component" "x" ["pool" "y"]). */}}
{{- define "segue.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: segue
{{- end }}

{{- define "segue.labels" -}}
{{ include "segue.commonLabels" . }}
app.kubernetes.io/name: {{ include "segue.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "segue.selectorLabels" -}}
app.kubernetes.io/name: {{ include "segue.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- with .pool }}
segue/pool: {{ . }}
{{- end }}
{{- end }}

{{- define "segue.componentLabels" -}}
{{ include "segue.commonLabels" .root }}
{{ include "segue.selectorLabels" . }}
{{- end }}

{{/* Image: (dict "root" $ "image" $override) */}}
{{- define "segue.image" -}}
{{- $image := mergeOverwrite (deepCopy .root.Values.image) (default dict .image) }}
{{- printf "%s:%s" $image.repository (default .root.Chart.AppVersion $image.tag) }}
{{- end }}

{{- define "segue.pullPolicy" -}}
{{- $image := mergeOverwrite (deepCopy .root.Values.image) (default dict .image) }}
{{- $image.pullPolicy }}
{{- end }}

{{/* Secrets ---------------------------------------------------------------- */}}
{{- define "segue.connectionsSecret" -}}
{{- printf "%s-connections" (include "segue.fullname" .) }}
{{- end }}

{{- define "segue.databaseSecret" -}}
{{- default (include "segue.connectionsSecret" .) .Values.database.existingSecret }}
{{- end }}

{{- define "segue.databaseKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}database-url{{ end }}
{{- end }}

{{- define "segue.brokerSecret" -}}
{{- default (include "segue.connectionsSecret" .) .Values.broker.existingSecret }}
{{- end }}

{{- define "segue.brokerKey" -}}
{{- if .Values.broker.existingSecret }}{{ .Values.broker.existingSecretKey }}{{ else }}broker-url{{ end }}
{{- end }}

{{/* Whether the chart makes the connections Secret (one of the URLs is not in a Secret of yours). */}}
{{- define "segue.makesConnections" -}}
{{- if or (not .Values.database.existingSecret) (not .Values.broker.existingSecret) }}true{{ end }}
{{- end }}

{{/* A generated secret kept across upgrades: (dict "root" $ "name" secretName "key" key "value" given "make" generatorOutput) */}}
{{- define "segue.keptSecretValue" -}}
{{- if .value }}
{{- .value }}
{{- else }}
{{- $found := lookup "v1" "Secret" .root.Release.Namespace .name }}
{{- if and $found (hasKey ($found.data | default dict) .key) }}
{{- index $found.data .key | b64dec }}
{{- else }}
{{- .make }}
{{- end }}
{{- end }}
{{- end }}

{{/* Environment of every Segue container ------------------------------------ */}}
{{- define "segue.env" -}}
- name: SEGUE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "segue.databaseSecret" . }}
      key: {{ include "segue.databaseKey" . }}
- name: SEGUE_BROKER_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "segue.brokerSecret" . }}
      key: {{ include "segue.brokerKey" . }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "segue.envFrom" -}}
- configMapRef:
    name: {{ include "segue.fullname" . }}-config
{{- with .Values.extraEnvFrom }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Volumes of a Segue pod: (dict "root" $ "homes" (list "home")), a home per container. */}}
{{- define "segue.volumes" -}}
{{- range $i, $home := .homes }}
{{- if $i }}{{ "\n" }}{{ end -}}
- name: {{ $home }}
  emptyDir:
    sizeLimit: 1Gi
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
{{- with .root.Values.artifacts.existingClaim }}
- name: artifacts
  persistentVolumeClaim:
    claimName: {{ . }}
{{- end }}
{{- end }}

{{- define "segue.volumeMounts" -}}
- name: {{ .home }}
  mountPath: /var/lib/segue
- name: tmp
  mountPath: /tmp
{{- if .root.Values.artifacts.existingClaim }}
- name: artifacts
  mountPath: /var/lib/segue/artifacts
{{- end }}
{{- end }}

{{/* Heartbeat probes (exec scripts/healthcheck.py): (dict "root" $) */}}
{{- define "segue.probes" -}}
{{- $probes := .root.Values.probes }}
{{- $settings := .root.Values.settings }}
{{- if lt (float64 $probes.maxAgeS) (mulf 3 $settings.heartbeatIntervalS) }}
{{- fail (printf "probes.maxAgeS (%v) must be at least 3 x settings.heartbeatIntervalS (%v): a busy container would be restarted between two heartbeats" $probes.maxAgeS $settings.heartbeatIntervalS) }}
{{- end }}
{{- $check := list "python" "/usr/local/bin/segue-healthcheck" "/var/lib/segue/heartbeat" "--max-age" -}}
startupProbe:
  exec:
    command: {{ append $check (toString $probes.maxAgeS) | toJson }}
  periodSeconds: 5
  timeoutSeconds: 5
  failureThreshold: {{ max 1 (div (int $probes.startupS) 5) }}
livenessProbe:
  exec:
    command: {{ append $check (toString $probes.maxAgeS) | toJson }}
  periodSeconds: 15
  timeoutSeconds: 5
  failureThreshold: 3
readinessProbe:
  exec:
    command: {{ append $check (toString $settings.workerTimeoutS) | toJson }}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 2
{{- end }}

{{/* Pods' shared spec parts ---------------------------------------------------- */}}
{{- define "segue.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "segue.podSpecCommon" -}}
automountServiceAccountToken: false
{{- /* No <SERVICE>_PORT variables: a Service named segue-* would set SEGUE_* ones. */}}
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/* Worker pools ---------------------------------------------------------------- */}}
{{/* The queues of a pool: (dict "name" $name "pool" $pool) */}}
{{- define "segue.pool.queues" -}}
{{- $queues := dig "queues" (list) .pool }}
{{- if not $queues }}
{{- $queues = ternary (list "gpu") (list (dig "pool" "thread" .pool)) (gt (int (dig "gpu" 0 .pool)) 0) }}
{{- end }}
{{- join "," $queues }}
{{- end }}

{{/* Task slots of one pod of a pool. */}}
{{- define "segue.pool.slots" -}}
{{- $gpus := int (dig "gpu" 0 .pool) }}
{{- if gt $gpus 0 }}{{ $gpus }}{{ else }}{{ int (dig "concurrency" 4 .pool) }}{{ end }}
{{- end }}

{{/* Seconds a stopping pod of a pool may take: its longest node plus the margin. */}}
{{- define "segue.pool.grace" -}}
{{- $longest := int (dig "longestNodeS" 3600 .pool) }}
{{- add $longest (int .root.Values.workers.shutdownMarginS) }}
{{- end }}

{{/* Whether KEDA owns a pool's replica count. */}}
{{- define "segue.pool.keda" -}}
{{- if and .root.Values.keda.enabled (dig "keda" "enabled" true .pool) }}true{{ end }}
{{- end }}
