{{/* Chart name. */}}
{{- define "recsys-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified name. */}}
{{- define "recsys-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Selector labels (immutable once deployed). */}}
{{- define "recsys-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "recsys-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Recommended labels. */}}
{{- define "recsys-operator.labels" -}}
{{ include "recsys-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: recsys
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* ServiceAccount name. */}}
{{- define "recsys-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "recsys-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
RBAC rules on namespaced resources: in the ClusterRole when the operator watches the whole
cluster, in a Role per namespace when operator.watchNamespaces names them (templates/rbac.yaml).
*/}}
{{- define "recsys-operator.namespacedRules" -}}
# The custom resource: watched, kopf's annotations patched, read before status writes.
- apiGroups: [recsys.io]
  resources: [recsystems]
  verbs: [get, list, watch, patch]
- apiGroups: [recsys.io]
  resources: [recsystems/status]
  verbs: [patch]
# Children carry ownerReferences with blockOwnerDeletion: true; the API server (with
# OwnerReferencesPermissionEnforcement) only allows that to who may update the owner's finalizers.
- apiGroups: [recsys.io]
  resources: [recsystems/finalizers]
  verbs: [update]
# kopf reports handler failures as Events.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
# Children kept in sync by server-side apply (get + patch; an apply that creates needs
# create) and watched for drift; never deleted by the operator (garbage collection does).
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [get, list, watch, create, patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
# The generated admin token: created once, never read (an existing one answers 409), so
# the operator can read no Secret at all.
- apiGroups: [""]
  resources: [secrets]
  verbs: [create]
# The data volume claim: created once; afterwards only its owner reference is patched
# (storage.retainPolicy). The operator never deletes a claim, but the API server
# (OwnerReferencesPermissionEnforcement) lets only who may delete an object change its
# ownerReferences; the garbage collector deletes it, and only under retainPolicy: Delete.
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, create, patch, delete]
# Reading a finished training pod's terminationMessage.
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
# Training Jobs: launched, listed, deleted (history limits, Replace); not watched.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, create, delete]
# Optional children: also deleted when their feature is switched off.
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [ingresses, networkpolicies]
  verbs: [get, list, watch, create, patch, delete]
# Not watched for drift (the Prometheus Operator CRDs may be missing): applied and deleted.
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors, prometheusrules]
  verbs: [get, create, patch, delete]
{{- end -}}
