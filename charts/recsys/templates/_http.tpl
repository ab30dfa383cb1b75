{{/* Deployment of an HTTP tier: (dict "ctx" $ "component" "api" "port" 5001 "probePort" 5011). */}}
{{- define "recsys.httpDeployment" -}}
{{- $ctx := .ctx -}}
{{- $v := index $ctx.Values .component -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "recsys.fullname" $ctx }}-{{ .component }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "recsys.labels" . | nindent 4 }}
spec:
  {{- if not $v.autoscaling.enabled }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "recsys.selectorLabels" . | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  template:
    metadata:
      labels:
        {{- include "recsys.labels" . | nindent 8 }}
        recsys.io/redis-client: "true"
        recsys.io/amqp-client: "true"
      annotations:
        {{- include "recsys.podAnnotations" $ctx | nindent 8 }}
    spec:
      {{- include "recsys.podSpecCommon" $ctx | nindent 6 }}
      containers:
        - name: {{ .component }}
          image: {{ include "recsys.image" $ctx }}
          imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
          args: [{{ .component }}]
          ports:
            - name: http
              containerPort: {{ .port }}
              protocol: TCP
            - name: probes
              containerPort: {{ .probePort }}
              protocol: TCP
          env:
            {{- include "recsys.secretEnv" $ctx | nindent 12 }}
          envFrom:
            - configMapRef:
                name: {{ include "recsys.configName" $ctx }}
          # Start-up: the serving port answers. After it, the probes use their own port,
          # served by a thread of its own, so a flood on the serving port does not make a
          # busy pod look dead (services/common/health_server.py). Readiness follows
          # /healthcheck (503 while a dependency is down: traffic drains); liveness (/livez)
          # only asks whether the serving event loop still turns, so an outage of Redis or
          # RabbitMQ does not become a restart storm.
          startupProbe:
            httpGet: {path: /metrics, port: http}
            periodSeconds: 2
            timeoutSeconds: 3
            failureThreshold: 60
          readinessProbe:
            httpGet: {path: /healthcheck, port: probes}
            periodSeconds: 5
            timeoutSeconds: 3
          livenessProbe:
            httpGet: {path: /livez, port: probes}
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 6
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $ctx.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 256Mi
{{- end -}}

{{/* Service of an HTTP tier. */}}
{{- define "recsys.httpService" -}}
{{- $ctx := .ctx -}}
{{- $v := index $ctx.Values .component -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "recsys.fullname" $ctx }}-{{ .component }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "recsys.labels" . | nindent 4 }}
spec:
  type: {{ $v.service.type }}
  selector:
    {{- include "recsys.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ $v.service.port }}
      targetPort: http
      protocol: TCP
{{- end -}}

{{/* HPA of an HTTP tier (only when enabled). */}}
{{- define "recsys.hpa" -}}
{{- $ctx := .ctx -}}
{{- $v := index $ctx.Values .component -}}
{{- if $v.autoscaling.enabled }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "recsys.fullname" $ctx }}-{{ .component }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "recsys.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "recsys.fullname" $ctx }}-{{ .component }}
  minReplicas: {{ $v.autoscaling.minReplicas }}
  maxReplicas: {{ $v.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $v.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
{{- end -}}

{{/* PDB of an HTTP tier (only when enabled). */}}
{{- define "recsys.pdb" -}}
{{- $ctx := .ctx -}}
{{- $v := index $ctx.Values .component -}}
{{- if $v.pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "recsys.fullname" $ctx }}-{{ .component }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "recsys.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ $v.pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "recsys.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}
