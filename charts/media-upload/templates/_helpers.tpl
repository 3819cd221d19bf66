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

{{/* Volumes shared by the API and the workers. Call with (dict "ctx" $ "tmpSizeLimit" "1Gi"). */}}
{{- define "media-upload.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .tmpSizeLimit }}
{{- if eq .ctx.Values.temporal.auth "mtls" }}
- name: temporal-tls
  secret:
    secretName: {{ required "temporal.mtls.secretName is required when temporal.auth=mtls" .ctx.Values.temporal.mtls.secretName }}
    defaultMode: 0440
{{- end }}
{{- end }}

{{- define "media-upload.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if eq .Values.temporal.auth "mtls" }}
- name: temporal-tls
  mountPath: {{ include "media-upload.temporalTlsMountPath" . }}
  readOnly: true
{{- end }}
{{- end }}
