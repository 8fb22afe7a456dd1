{{- define "aitrading.name" -}}aitrading{{- end -}}
{{- define "aitrading.fullname" -}}{{ printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "aitrading.labels" -}}
app.kubernetes.io/name: {{ include "aitrading.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "aitrading.selector" -}}
app.kubernetes.io/name: {{ include "aitrading.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}
{{- define "aitrading.serviceAccount" -}}{{ .Values.serviceAccount.name | default (include "aitrading.fullname" .) }}{{- end -}}
{{- define "aitrading.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- $registry := (.Values.global).imageRegistry | default "" -}}
{{- if $registry -}}
{{- $parts := splitn "/" 2 $ref -}}
{{- $first := $parts._0 -}}
{{- $path := $ref -}}
{{- if and $parts._1 (or (contains "." $first) (contains ":" $first) (eq $first "localhost")) -}}{{- $path = $parts._1 -}}{{- end -}}
{{- if not (contains "/" $path) -}}{{- $path = printf "library/%s" $path -}}{{- end -}}
{{- printf "%s/%s" (trimSuffix "/" $registry) $path -}}
{{- else -}}
{{- $ref -}}
{{- end -}}
{{- end -}}
