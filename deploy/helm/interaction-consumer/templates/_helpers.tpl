{{/* The release's objects' name: the release's, or release-chart. */}}
{{- define "ic.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels selecting one component's pods (monitor or poller). */}}
{{- define "ic.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Every object's labels. */}}
{{- define "ic.labels" -}}
{{ include "ic.selector" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "ic.image" -}}
{{- $repository := required "image.repository: where the image was pushed" .Values.image.repository -}}
{{- printf "%s:%s" $repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "ic.secret" -}}
{{- required "existingSecret: the Secret with the credentials, created out of band (docs/operate/deploying.md)" .Values.existingSecret -}}
{{- end -}}

{{/* A TOML string, the same as JSON's for what labels and URLs hold. */}}
{{- define "ic.tomlStrings" -}}
{{- $items := list -}}
{{- range . }}{{ $items = append $items (toJson .) }}{{ end -}}
{{- join ", " $items -}}
{{- end -}}

{{/* The settings the chart sets on top of settings.toml, and the Secret's, as env. */}}
{{- define "ic.env" -}}
- name: INTERACTION_CONSUMER_HTTP_PORT
  value: {{ .Values.port | quote }}
- name: INTERACTION_CONSUMER_ALERTMANAGER_URLS
  value: {{ printf "[%s]" (include "ic.tomlStrings" .Values.alertmanager.urls) | quote }}
{{- $labels := list (printf "namespace = %s" (toJson .Release.Namespace)) }}
{{- range $name, $value := .Values.alertLabels }}
{{- $labels = append $labels (printf "%s = %s" $name (toJson $value)) }}
{{- end }}
- name: INTERACTION_CONSUMER_ALERTMANAGER_LABELS
  value: {{ printf "{ %s }" (join ", " $labels) | quote }}
- name: INTERACTION_CONSUMER_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "ic.secret" . }}
      key: kafka-sasl-password
      optional: true
{{- end -}}

{{/* What both workloads' pods share. */}}
{{- define "ic.podSecurity" -}}
automountServiceAccountToken: false
# no service-link variables (INTERACTION_CONSUMER_PORT...): they are not settings
enableServiceLinks: false
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  seccompProfile:
    type: RuntimeDefault
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "ic.containerSecurity" -}}
securityContext:
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  capabilities:
    drop: ["ALL"]
{{- end -}}

{{- define "ic.settingsVolume" -}}
volumes:
  - name: settings
    configMap:
      name: {{ include "ic.fullname" . }}
{{- end -}}

{{- define "ic.settingsMount" -}}
volumeMounts:
  - name: settings
    mountPath: /etc/interaction-consumer
    readOnly: true
{{- end -}}
