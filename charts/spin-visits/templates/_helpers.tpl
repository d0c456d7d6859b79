{{/* The StatefulSet's name; Services and pods derive theirs from it. */}}
{{- define "spin-visits.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "spin-visits.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ include "spin-visits.fullname" . }}
{{- end -}}

{{- define "spin-visits.labels" -}}
{{ include "spin-visits.selectorLabels" . }}
app.kubernetes.io/component: visit-log
app.kubernetes.io/part-of: spin-visits
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
