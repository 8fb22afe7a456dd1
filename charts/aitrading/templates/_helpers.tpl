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
{{- define "aitrading.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{- end -}}
