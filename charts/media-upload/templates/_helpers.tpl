{{/* Chart name, shortened to the 63 characters a label value allows. */}}
{{- define "media-upload.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Resource name prefix: fullnameOverride, else the release name when it already contains the
chart name, else <release>-<chart>. Component suffixes ("-api", "-worker-video") are added
by the templates, so the prefix leaves room for them.
*/}}
{{- define "media-upload.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "media-upload.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. Call with (dict "ctx" $ "component" "api"). */}}
{{- define "media-upload.labels" -}}
helm.sh/chart: {{ include "media-upload.chart" .ctx }}
{{ include "media-upload.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: media-upload
{{- end }}

{{/* Labels a Deployment selects its pods by. Call with (dict "ctx" $ "component" "api"). */}}
{{- define "media-upload.selectorLabels" -}}
app.kubernetes.io/name: {{ include "media-upload.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{- define "media-upload.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "media-upload.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Secret holding DATABASE_URL, JWT_SECRET, TEMPORAL_API_KEY: existingSecret or the chart's. */}}
{{- define "media-upload.secretName" -}}
{{- default (include "media-upload.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "media-upload.configMapName" -}}
{{- include "media-upload.fullname" . }}
{{- end }}

{{/* clamd address the workers use: the chart's Service, or clamd.host for an external one. */}}
{{- define "media-upload.clamdHost" -}}
{{- if .Values.clamd.enabled }}
{{- printf "%s-clamd" (include "media-upload.fullname" .) }}
{{- else }}
{{- required "clamd.host is required when clamd.enabled=false" .Values.clamd.host }}
{{- end }}
{{- end }}

{{/* image reference. Call with (dict "image" .Values.images.api "ctx" $). */}}
{{- define "media-upload.image" -}}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) }}
{{- end }}

{{- define "media-upload.temporalTlsMountPath" -}}
/etc/temporal/tls
{{- end }}

{{/*
Pod annotations that roll the pods when the ConfigMap or the chart Secret changes.
*/}}
{{- define "media-upload.configChecksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}

{{/* envFrom shared by the API and the workers: the ConfigMap and the Secret. */}}
{{- define "media-upload.envFrom" -}}
- configMapRef:
    name: {{ include "media-upload.configMapName" . }}
- secretRef:
    name: {{ include "media-upload.secretName" . }}
{{- end }}

{{/*
Volumes of the API, the workers and the migration Job: the /tmp emptyDir, the Temporal client
certificate (mTLS; not for the Job), the CA bundle and the component's extraVolumes.
Call with (dict "ctx" $ "tmpSizeLimit" "1Gi" "temporal" true "extra" .Values.api.extraVolumes).
*/}}
{{- define "media-upload.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .tmpSizeLimit }}
{{- if and .temporal (eq .ctx.Values.temporal.auth "mtls") }}
- name: temporal-tls
  secret:
    secretName: {{ required "temporal.mtls.secretName is required when temporal.auth=mtls" .ctx.Values.temporal.mtls.secretName }}
    defaultMode: 0440
{{- end }}
{{- with .ctx.Values.caBundle }}
{{- if and .secretName .configMapName }}
{{- fail "caBundle: set secretName or configMapName, not both" }}
{{- else if .secretName }}
- name: ca-bundle
  secret:
    secretName: {{ .secretName }}
    items:
      - key: {{ .key }}
        path: {{ .key }}
{{- else if .configMapName }}
- name: ca-bundle
  configMap:
    name: {{ .configMapName }}
    items:
      - key: {{ .key }}
        path: {{ .key }}
{{- end }}
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The mounts of those volumes. Call with the same dict, "extra" being the extraVolumeMounts. */}}
{{- define "media-upload.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if and .temporal (eq .ctx.Values.temporal.auth "mtls") }}
- name: temporal-tls
  mountPath: {{ include "media-upload.temporalTlsMountPath" .ctx }}
  readOnly: true
{{- end }}
{{- if or .ctx.Values.caBundle.secretName .ctx.Values.caBundle.configMapName }}
- name: ca-bundle
  mountPath: {{ include "media-upload.caBundleMountPath" .ctx }}
  readOnly: true
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "media-upload.caBundleMountPath" -}}
/etc/media-upload/ca
{{- end }}

{{/*
Env entries every API, worker and migration container gets: NODE_EXTRA_CA_CERTS when a CA
bundle is set. Node reads it once at start and adds it to its bundled roots, so the pg driver
(which verifies against those roots with sslmode=verify-full), S3 and webhooks trust it
without anything in DATABASE_URL pointing at a file.
*/}}
{{- define "media-upload.caBundleEnv" -}}
{{- if or .Values.caBundle.secretName .Values.caBundle.configMapName }}
- name: NODE_EXTRA_CA_CERTS
  value: {{ printf "%s/%s" (include "media-upload.caBundleMountPath" .) .Values.caBundle.key | quote }}
{{- end }}
{{- end }}

{{/*
Container resources with an ephemeral-storage request equal to the /tmp emptyDir limit unless
the values set one, so the scheduler only places a pod on a node with that much disk (an
emptyDir counts against the node's ephemeral storage). Call with
(dict "resources" .Values.api.resources "ephemeral" .Values.api.tmpSizeLimit).
*/}}
{{- define "media-upload.resources" -}}
{{- $resources := deepCopy (default dict .resources) }}
{{- $requests := default dict $resources.requests }}
{{- if not (hasKey $requests "ephemeral-storage") }}
{{- $_ := set $requests "ephemeral-storage" .ephemeral }}
{{- end }}
{{- $_ := set $resources "requests" $requests }}
{{- toYaml $resources }}
{{- end }}

{{/*
topologySpreadConstraints of a component: its own when set, else one per topologySpread key.
Call with (dict "ctx" $ "component" "api" "constraints" .Values.api.topologySpreadConstraints).
*/}}
{{- define "media-upload.topologySpread" -}}
{{- if .constraints }}
{{- toYaml .constraints }}
{{- else if .ctx.Values.topologySpread.enabled }}
{{- range .ctx.Values.topologySpread.topologyKeys }}
- maxSkew: {{ $.ctx.Values.topologySpread.maxSkew }}
  topologyKey: {{ . }}
  whenUnsatisfiable: {{ $.ctx.Values.topologySpread.whenUnsatisfiable }}
  labelSelector:
    matchLabels:
      {{- include "media-upload.selectorLabels" (dict "ctx" $.ctx "component" $.component) | nindent 6 }}
{{- end }}
{{- end }}
{{- end }}

{{/* Settings that cannot work, refused at render time (included by configmap.yaml). */}}
{{- define "media-upload.validate" -}}
{{- if and (eq .Values.temporal.auth "apiKey") (not .Values.secrets.existingSecret) (not .Values.secrets.temporalApiKey) }}
{{- fail "temporal.auth=apiKey needs the key: set secrets.temporalApiKey, or secrets.existingSecret with the key TEMPORAL_API_KEY" }}
{{- end }}
{{- if eq (int .Values.api.port) (int .Values.api.metricsPort) }}
{{- fail "api.metricsPort must differ from api.port: the metrics stay off the public port" }}
{{- end }}
{{- end }}
