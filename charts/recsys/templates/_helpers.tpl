{{/* Chart name. */}}
{{- define "recsys.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified name (object name prefix), at most 40 chars so suffixes fit. */}}
{{- define "recsys.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* helm.sh/chart label value. */}}
{{- define "recsys.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of a component: call with (dict "ctx" $ "component" "api"). The bundled
servers pass "name" too (valkey, rabbitmq): app.kubernetes.io/name says which application runs,
and the services' own NetworkPolicy, which selects name=recsys, must not select them. */}}
{{- define "recsys.selectorLabels" -}}
app.kubernetes.io/name: {{ .name | default (include "recsys.name" .ctx) }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Recommended labels of a component. */}}
{{- define "recsys.labels" -}}
{{ include "recsys.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: recsys
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ include "recsys.chart" .ctx }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Services image reference. */}}
{{- define "recsys.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* <namespace>.<release>: unique per installation, used for isolation names. */}}
{{- define "recsys.isolationSuffix" -}}
{{- printf "%s.%s" .Release.Namespace .Release.Name -}}
{{- end -}}

{{- define "recsys.configName" -}}{{ include "recsys.fullname" . }}-config{{- end -}}
{{- define "recsys.pvcName" -}}{{ include "recsys.fullname" . }}-data{{- end -}}

{{/* Admin token Secret name and key. */}}
{{- define "recsys.adminSecretName" -}}
{{- default (printf "%s-admin" (include "recsys.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}
{{- define "recsys.adminSecretKey" -}}
{{- .Values.auth.existingSecretKey -}}
{{- end -}}

{{/* Redis URL Secret name and key (bundled: the chart's own Secret; external: the user's). */}}
{{- define "recsys.redisSecretName" -}}
{{- if .Values.redis.enabled -}}{{ .Values.redis.auth.existingSecret }}{{- else -}}{{ .Values.externalRedis.existingSecret }}{{- end -}}
{{- end -}}
{{- define "recsys.redisSecretKey" -}}
{{- if .Values.redis.enabled -}}redis-url{{- else -}}{{ .Values.externalRedis.existingSecretKey }}{{- end -}}
{{- end -}}

{{/* AMQP URL Secret name and key: the chart's own Secret, the RabbitMQ Cluster Operator's
default-user Secret (its connection_string is the URL), or the user's. */}}
{{- define "recsys.amqpSecretName" -}}
{{- if and .Values.rabbitmq.enabled .Values.rabbitmq.clusterOperator.enabled -}}{{ include "recsys.rabbitmqName" . }}-default-user
{{- else if .Values.rabbitmq.enabled -}}{{ .Values.rabbitmq.auth.existingPasswordSecret }}
{{- else -}}{{ .Values.externalRabbitmq.existingSecret }}{{- end -}}
{{- end -}}
{{- define "recsys.amqpSecretKey" -}}
{{- if and .Values.rabbitmq.enabled .Values.rabbitmq.clusterOperator.enabled -}}connection_string
{{- else if .Values.rabbitmq.enabled -}}amqp-url
{{- else -}}{{ .Values.externalRabbitmq.existingSecretKey }}{{- end -}}
{{- end -}}

{{/* The bundled servers: object names (also their Services' DNS names), labels, volume size. */}}
{{- define "recsys.redisName" -}}{{ include "recsys.fullname" . }}-redis{{- end -}}
{{- define "recsys.rabbitmqName" -}}{{ include "recsys.fullname" . }}-rabbitmq{{- end -}}
{{- define "recsys.redisPersistenceSize" -}}
{{- /* The Bitnami chart's key still wins when a user set it (docs/kubernetes.md, migration). */ -}}
{{- .Values.redis.master.persistence.size | default .Values.redis.persistence.size -}}
{{- end -}}

{{/* Pod and container security of the bundled servers: the official images' own non-root
user (uid/gid 999 in both valkey/valkey and rabbitmq), read-only root, no capabilities. */}}
{{- define "recsys.serverPodSecurityContext" -}}
runAsNonRoot: true
runAsUser: 999
runAsGroup: 999
fsGroup: 999
# Ownership is fixed once, not on every start of a large volume.
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}
{{- define "recsys.serverContainerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Credentials every services container needs; all from Secrets, never plain values. */}}
{{- define "recsys.secretEnv" -}}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "recsys.redisSecretName" . }}
      key: {{ include "recsys.redisSecretKey" . }}
- name: AMQP_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "recsys.amqpSecretName" . }}
      key: {{ include "recsys.amqpSecretKey" . }}
- name: RECSYS_ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "recsys.adminSecretName" . }}
      key: {{ include "recsys.adminSecretKey" . }}
{{- end -}}

{{/* Pod annotations that roll pods when the configuration changes. */}}
{{- define "recsys.podAnnotations" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.auth.existingSecret }}
checksum/admin: {{ include (print $.Template.BasePath "/secret-admin.yaml") . | sha256sum }}
{{- end }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod-level settings shared by every workload. */}}
{{- define "recsys.podSpecCommon" -}}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A secret that survives upgrades: the value given, else the live one, else a random one
(rendered without a cluster, as `helm template` does, that last one changes every time). */}}
{{- define "recsys.stableSecret" -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .name -}}
{{- if .value -}}
{{- .value -}}
{{- else if and $existing $existing.data (index $existing.data .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}

{{/* Fail once with every problem found in the values. */}}
{{- define "recsys.validateValues" -}}
{{- $errors := list -}}
{{- if and (not .Values.redis.enabled) (not .Values.externalRedis.existingSecret) -}}
{{- $errors = append $errors "redis.enabled=false needs externalRedis.existingSecret (a Secret with the Redis URL)" -}}
{{- end -}}
{{- if and (not .Values.rabbitmq.enabled) (not .Values.externalRabbitmq.existingSecret) -}}
{{- $errors = append $errors "rabbitmq.enabled=false needs externalRabbitmq.existingSecret (a Secret with the AMQP URL)" -}}
{{- end -}}
{{- range $c := list "api" "collector" -}}
{{- $a := (index $.Values $c).autoscaling -}}
{{- if and $a.enabled (gt (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- $errors = append $errors (printf "%s.autoscaling.minReplicas must be <= maxReplicas" $c) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.rabbitmq.enabled .Values.rabbitmq.clusterOperator.enabled (not (.Capabilities.APIVersions.Has "rabbitmq.com/v1beta1/RabbitmqCluster")) -}}
{{- $errors = append $errors "rabbitmq.clusterOperator.enabled needs the RabbitMQ Cluster Operator: the cluster does not serve rabbitmq.com/v1beta1 RabbitmqCluster (install the operator, or leave it false for the bundled StatefulSet)" -}}
{{- end -}}
{{- if and .Values.redis.enabled (ne .Values.redis.architecture "standalone") -}}
{{- $errors = append $errors "redis.architecture: only standalone is bundled; for replication run your own Valkey/Redis and set redis.enabled=false with externalRedis.existingSecret" -}}
{{- end -}}
{{- if and .Values.redis.enabled (not .Values.redis.auth.enabled) -}}
{{- $errors = append $errors "redis.auth.enabled=false is not supported: the bundled Valkey always requires the password kept in redis.auth.existingSecret" -}}
{{- end -}}
{{- if (index .Values "kube-prometheus-stack").enabled -}}
{{- $errors = append $errors "kube-prometheus-stack.enabled: the chart no longer bundles kube-prometheus-stack; install it as its own release (docs/kubernetes.md, Monitoring) and set monitoring.*.labels.release to that release" -}}
{{- end -}}
{{- if and .Values.ingress.tls.enabled (not .Values.ingress.tls.secretName) -}}
{{- $errors = append $errors "ingress.tls.enabled needs ingress.tls.secretName" -}}
{{- end -}}
{{- if $errors -}}
{{- fail (printf "\nVALUES VALIDATION:\n  - %s" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}
