//! The chart the control plane's releases are installed from: the real rendering of the chart,
//! made a Helm chart whose templates honour the values the tests turn (agent, Ingress, tenant Job,
//! the database Secret, Hasura's image).

use std::path::Path;

/// Writes the tests' Helm chart to `dir`: the chart's own `Chart.yaml` (version 2022.12.22, as
/// published; the postgresql dependency left out, its objects being in the manifest), the
/// 2022.12 `values.yaml`, and one template, the real rendering of the chart
/// (`tests/fixtures/manifest-rendered.yaml`) with the release's name and namespace put back as
/// templates, so that every release stores the chart's objects under its own names.
pub fn test_chart(dir: &Path) {
    let root = env!("CARGO_MANIFEST_DIR");
    let read = |p: &str| {
        std::fs::read_to_string(format!("{root}/{p}")).unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    let chart_yaml = read("chart/Chart-2022.12.yaml");
    let chart_yaml = chart_yaml
        .split("dependencies:")
        .next()
        .expect("Chart.yaml")
        .replace("version: 0.0.0", "version: 2022.12.22")
        .replace("appVersion: \"latest\"", "appVersion: \"2022.12.22\"");
    std::fs::create_dir_all(dir.join("templates")).expect("chart dir");
    std::fs::write(dir.join("Chart.yaml"), chart_yaml).expect("Chart.yaml");
    std::fs::write(dir.join("values.yaml"), read("chart/values-2022.12.yaml")).expect("values");
    std::fs::write(
        dir.join("templates/all.yaml"),
        templated(&read("tests/fixtures/manifest-rendered.yaml")),
    )
    .expect("template");
    std::fs::write(
        dir.join("templates/agent.yaml"),
        format!(
            "{{{{- if .Values.agent.enabled }}}}\n{}\n{{{{- end }}}}\n",
            templated(&super::kube::agent_documents(
                1,
                "{{- with .Values.agent.env }}\n{{ toYaml . | indent 10 }}\n{{- end }}\n"
            ))
            .replacen(
                "spec:\n  replicas: 1\n",
                "spec:\n  replicas: {{ .Values.agent.replicas }}\n",
                1
            )
            .replacen(
                "PREFECT__CLOUD__AGENT__LABELS\n            value: \"[]\"",
                "PREFECT__CLOUD__AGENT__LABELS\n            value: {{ .Values.agent.prefectLabels | toJson | quote }}",
                1
            )
        ),
    )
    .expect("agent template");
    // The chart's Ingresses of `apollo` and `ui` (`<component>.ingress.*`), written from its values'
    // shape (the reference holds the chart's rendering with both disabled, not its templates).
    std::fs::write(
        dir.join("templates/ingress.yaml"),
        "{{- range $component := list \"apollo\" \"ui\" }}\n{{- $c := index $.Values $component }}\n\
         {{- if $c.ingress.enabled }}\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  \
         name: {{ $.Release.Name }}-{{ $component }}\n  labels:\n    app.kubernetes.io/name: prefect-server\n    \
         app.kubernetes.io/instance: {{ $.Release.Name }}\n    app.kubernetes.io/component: {{ $component }}\n\
         {{- with $c.ingress.labels }}\n{{ toYaml . | indent 4 }}\n{{- end }}\n\
         {{- with $c.ingress.annotations }}\n  annotations:\n{{ toYaml . | indent 4 }}\n{{- end }}\nspec:\n\
         {{- with $c.ingress.ingressClassName }}\n  ingressClassName: {{ . }}\n{{- end }}\n\
         {{- with $c.ingress.tls }}\n  tls:\n{{ toYaml . | indent 4 }}\n{{- end }}\n  rules:\n\
         {{- range $c.ingress.hosts }}\n  - host: {{ . }}\n    http:\n      paths:\n      - path: {{ $c.ingress.path }}\n        \
         pathType: Prefix\n        backend:\n          service:\n            name: {{ $.Release.Name }}-{{ $component }}\n            \
         port:\n              number: {{ $c.service.port }}\n{{- end }}\n{{- end }}\n{{- end }}\n",
    )
    .expect("ingress template");
    // The chart's tenant Job (`jobs.createTenant.*`), written from its values' shape as the Ingresses.
    std::fs::write(
        dir.join("templates/create-tenant-job.yaml"),
        "{{- with .Values.jobs.createTenant }}{{- if .enabled }}\napiVersion: batch/v1\nkind: Job\nmetadata:\n  \
         name: {{ $.Release.Name }}-create-tenant-job\n  labels:\n    app.kubernetes.io/name: prefect-server\n    \
         app.kubernetes.io/instance: {{ $.Release.Name }}\n    app.kubernetes.io/component: create-tenant-job\n\
         spec:\n  backoffLimit: {{ .backoffLimit }}\n  template:\n    spec:\n      restartPolicy: OnFailure\n      \
         containers:\n      - name: create-tenant-job\n        image: \"{{ .image.name }}:{{ .image.tag | default \"latest\" }}\"\n        \
         command: [\"prefect\", \"server\", \"create-tenant\", \"--name\", {{ .tenant.name | quote }}, \"--slug\", \
         {{ .tenant.slug | quote }}]\n{{- end }}{{- end }}\n",
    )
    .expect("tenant job template");
    // Not the chart's: an object of an API group a test can stop the API server serving.
    std::fs::write(
        dir.join("templates/test-hpa.yaml"),
        "{{- if (.Values.testExtras | default dict).hpa }}\napiVersion: autoscaling/v2\n\
         kind: HorizontalPodAutoscaler\nmetadata:\n  name: {{ .Release.Name }}-apollo\nspec:\n  \
         scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: {{ .Release.Name }}-apollo}\n  \
         minReplicas: 1\n  maxReplicas: 2\n{{- end }}\n",
    )
    .expect("hpa template");
}

/// The rendered manifest of release `prefect` in `default`, with both put back as templates.
fn templated(manifest: &str) -> String {
    let mut out = manifest
        .replace(
            "namespace: \"default\"",
            "namespace: {{ .Release.Namespace | quote }}",
        )
        .replace("- \"default\"", "- {{ .Release.Namespace | quote }}")
        .replace(
            "namespace: default\n",
            "namespace: {{ .Release.Namespace }}\n",
        )
        .replace("value: default\n", "value: {{ .Release.Namespace }}\n")
        .replace("instance: prefect\n", "instance: {{ .Release.Name }}\n")
        .replace("instance:  prefect\n", "instance: {{ .Release.Name }}\n")
        .replace(
            "helm.sh/chart: prefect-server-0.0.0",
            "helm.sh/chart: prefect-server-2022.12.22",
        );
    for component in [
        "apollo",
        "graphql",
        "hasura",
        "postgresql",
        "serviceaccount",
        "towel",
        "ui",
        "agent",
        "create-tenant",
    ] {
        out = out.replace(
            &format!("prefect-{component}"),
            &format!("{{{{ .Release.Name }}}}-{component}"),
        );
    }
    // The services' password comes from `postgresql.auth.existingSecret` when it names one, as the
    // chart's templates take it.
    out.replace(".default:", ".{{ .Release.Namespace }}:")
        .replace(".default\n", ".{{ .Release.Namespace }}\n")
        .replace(".default\"", ".{{ .Release.Namespace }}\"")
        .replace(
            "image: hasura/graphql-engine:v2.1.1",
            "image: {{ printf \"%s:%s\" .Values.hasura.image.name .Values.hasura.image.tag | quote }}",
        )
        .replace(
            "name: {{ .Release.Name }}-postgresql\n                  key: postgres-password",
            "name: {{ .Values.postgresql.auth.existingSecret | default (printf \"%s-postgresql\" \
             .Release.Name) }}\n                  key: postgres-password",
        )
}
