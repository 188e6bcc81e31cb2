{{/* Name prefix of every object: the release name, plus "-platewatch" unless it already says so. */}}
{{- define "platewatch.fullname" -}}
{{- if contains "platewatch" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-platewatch" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "platewatch.labels" -}}
app.kubernetes.io/part-of: platewatch
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "name" "api") */}}
{{- define "platewatch.selector" -}}
app.kubernetes.io/name: platewatch
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "platewatch.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "platewatch.kafkaBootstrap" -}}
{{- if .Values.kafka.enabled -}}
{{- printf "%s-kafka:%d" (include "platewatch.fullname" .) (int .Values.kafka.port) -}}
{{- else -}}
{{- required "kafka.bootstrap is required when kafka.enabled is false" .Values.kafka.bootstrap -}}
{{- end -}}
{{- end -}}

{{- define "platewatch.clickhouseUrl" -}}
{{- if .Values.clickhouse.enabled -}}
{{- printf "http://%s-clickhouse:%d" (include "platewatch.fullname" .) (int .Values.clickhouse.port) -}}
{{- else -}}
{{- required "clickhouse.url is required when clickhouse.enabled is false" .Values.clickhouse.url -}}
{{- end -}}
{{- end -}}

{{/* Environment shared by every component and the setup jobs. */}}
{{- define "platewatch.env" -}}
{{- $full := include "platewatch.fullname" . -}}
- name: PLATEWATCH_KAFKA_BOOTSTRAP
  value: {{ include "platewatch.kafkaBootstrap" . | quote }}
- name: PLATEWATCH_METRICS_PORT
  value: {{ .Values.metricsPort | quote }}
- name: PLATEWATCH_VAR_DIR
  value: /var/lib/platewatch
- name: PLATEWATCH_CAMERAS_FILE
  value: /etc/platewatch/cameras.yaml
- name: PLATEWATCH_WEBHOOKS_FILE
  value: /etc/platewatch/webhooks.yaml
- name: PLATEWATCH_CLICKHOUSE_URL
  value: {{ include "platewatch.clickhouseUrl" . | quote }}
- name: PLATEWATCH_CLICKHOUSE_DATABASE
  value: {{ .Values.clickhouse.database | quote }}
- name: PLATEWATCH_CLICKHOUSE_USER
  value: {{ .Values.clickhouse.user | quote }}
- name: PLATEWATCH_CLICKHOUSE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.clickhouse.existingSecret | quote }}
      key: {{ .Values.clickhouse.passwordKey | quote }}
- name: PLATEWATCH_TRITON_URL
  value: {{ printf "%s-triton:8001" $full | quote }}
- name: PLATEWATCH_SEARCH_GRPC_TARGET
  value: {{ printf "%s-search:%d" $full (int .Values.components.search.ports.grpc) | quote }}
- name: PLATEWATCH_HOTLIST_GRPC_TARGET
  value: {{ printf "%s-hotlist:%d" $full (int .Values.components.hotlist.ports.grpc) | quote }}
- name: PLATEWATCH_AUDIT_GRPC_TARGET
  value: {{ printf "%s-audit:%d" $full (int .Values.components.audit.ports.grpc) | quote }}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- range .Values.secretEnv }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretName | quote }}
      key: {{ .key | quote }}
{{- end }}
{{- end -}}
