{{/* Names, labels and the shared decisions of the Confab chart. */}}

{{- define "confab.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name prefix: RELEASE-confab, or RELEASE when it already contains the chart name. */}}
{{- define "confab.fullname" -}}
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

{{- define "confab.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "confab.labels" -}}
helm.sh/chart: {{ include "confab.chart" . }}
app.kubernetes.io/name: {{ include "confab.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: confab
{{- end }}

{{/* Selector of the Confab nodes. */}}
{{- define "confab.selectorLabels" -}}
app.kubernetes.io/name: {{ include "confab.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/* Selector of the bundled Redis. */}}
{{- define "confab.redis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "confab.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis
{{- end }}

{{- define "confab.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "confab.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "confab.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "confab.headlessName" -}}
{{- printf "%s-headless" (include "confab.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "confab.credentialsSecretName" -}}
{{- default (printf "%s-credentials" (include "confab.fullname" .)) .Values.credentials.existingSecret }}
{{- end }}

{{- define "confab.redis.fullname" -}}
{{- printf "%s-redis" (include "confab.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "confab.redis.secretName" -}}
{{- default (include "confab.redis.fullname" .) .Values.redis.auth.existingSecret }}
{{- end }}

{{- define "confab.redis.secretKey" -}}
{{- if .Values.redis.auth.existingSecret }}{{ .Values.redis.auth.existingSecretKey }}{{ else }}redis-password{{ end }}
{{- end }}

{{/* "true" when the chart runs its own Redis: enabled and no external Redis given. */}}
{{- define "confab.redis.bundled" -}}
{{- if and .Values.redis.enabled (not .Values.externalRedis.url) (not .Values.externalRedis.existingSecret) }}true{{ end }}
{{- end }}

{{/*
A value kept across upgrades: the one given, else the one in the live Secret (read with
lookup, empty in `helm template`), else a new one made by the caller.
Arguments: (list $given $secretData $key $generated)
*/}}
{{- define "confab.keep" -}}
{{- $given := index . 0 }}{{ $data := index . 1 }}{{ $key := index . 2 }}{{ $new := index . 3 }}
{{- if $given }}{{ $given }}
{{- else if and $data (hasKey $data $key) }}{{ index $data $key | b64dec }}
{{- else }}{{ $new }}
{{- end }}
{{- end }}

{{/* 32 random hexadecimal digits. */}}
{{- define "confab.hex32" -}}
{{- randAlphaNum 64 | sha256sum | trunc 32 }}
{{- end }}

{{/* Refuses settings that cannot work. */}}
{{- define "confab.validate" -}}
{{- if not (or (include "confab.redis.bundled" .) .Values.externalRedis.url .Values.externalRedis.existingSecret) }}
{{- fail "Confab nodes in a cluster share state through Redis: keep redis.enabled=true or set externalRedis.url (or externalRedis.existingSecret)." }}
{{- end }}
{{- $drain := add (int .Values.lifecycle.preStopSleepSeconds) (int .Values.config.shutdownTimeoutSecs) }}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $drain) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed lifecycle.preStopSleepSeconds + config.shutdownTimeoutSecs (%d), or a draining node is killed." (int .Values.terminationGracePeriodSeconds) (int $drain)) }}
{{- end }}
{{- if not (has .Values.redis.appendfsync (list "always" "everysec" "no")) }}
{{- fail "redis.appendfsync must be always, everysec or no." }}
{{- end }}
{{- end }}
