{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "gpufleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; the release name alone when it already contains the chart name. */}}
{{- define "gpufleet.fullname" -}}
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

{{- define "gpufleet.operatorName" -}}
{{- printf "%s-operator" (include "gpufleet.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gpufleet.agentName" -}}
{{- printf "%s-agent" (include "gpufleet.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gpufleet.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "gpufleet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "gpufleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gpufleet
{{- end }}

{{/* Selector labels of one component ("operator" or "agent"): call with (dict "root" $ "component" "operator"). */}}
{{- define "gpufleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gpufleet.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Restricted Pod Security Standard for both components' containers. */}}
{{- define "gpufleet.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "gpufleet.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "gpufleet.natsName" -}}
{{- printf "%s-nats" (include "gpufleet.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "true" when the in-chart NATS runs with TLS and per-component authorization, else "". Fails on a setting it needs. */}}
{{- define "gpufleet.natsAuthorization" -}}
{{- if .Values.nats.authorization.enabled }}
{{- if not .Values.nats.enabled }}
{{- fail "nats.authorization.enabled is for the in-chart NATS: it needs nats.enabled" }}
{{- end }}
{{- if .Values.natsUrl }}
{{- fail "nats.authorization.enabled is for the in-chart NATS: leave natsUrl empty (an external server's authorization is its own)" }}
{{- end }}
{{- if .Values.tls.insecureDevelopmentMode }}
{{- fail "nats.authorization.enabled needs the operator's CA: it cannot be on with tls.insecureDevelopmentMode" }}
{{- end }}
{{- "true" }}
{{- end }}
{{- end }}

{{/* The in-chart NATS Service's DNS names, comma-separated: the names its certificate carries. */}}
{{- define "gpufleet.natsDnsNames" -}}
{{- $name := include "gpufleet.natsName" . }}
{{- $ns := .Release.Namespace }}
{{- printf "%s,%s.%s,%s.%s.svc,%s.%s.svc.cluster.local" $name $name $ns $name $ns $name $ns }}
{{- end }}

{{/* The NATS URL components use: natsUrl when set, else the in-chart NATS when nats.enabled, else none (""). */}}
{{- define "gpufleet.natsUrl" -}}
{{- if .Values.natsUrl }}
{{- .Values.natsUrl }}
{{- else if .Values.nats.enabled }}
{{- $scheme := ternary "tls" "nats" (eq (include "gpufleet.natsAuthorization" .) "true") }}
{{- printf "%s://%s.%s.svc:%d" $scheme (include "gpufleet.natsName" .) .Release.Namespace (int .Values.nats.port) }}
{{- end }}
{{- end }}

{{/* Where the nats-server's Secret is mounted: NATS_SERVER_TLS_DIR in common/src/nats/authorization.ts, whose
rendered user list names these files (a chart test checks that the two agree). */}}
{{- define "gpufleet.natsServerTlsDir" -}}
/etc/nats-tls
{{- end }}

{{/* The in-chart nats-server's config, user list, certificate and pid file, as both its containers mount them. */}}
{{- define "gpufleet.natsConfigMounts" -}}
- name: pid
  mountPath: /var/run/nats
- name: config
  mountPath: /etc/nats-config
  readOnly: true
- name: authorization
  mountPath: /etc/nats-auth
  readOnly: true
- name: tls
  mountPath: {{ include "gpufleet.natsServerTlsDir" . }}
  readOnly: true
{{- end }}
