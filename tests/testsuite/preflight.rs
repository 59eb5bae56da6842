//! `preflight` end to end on the built binary: a values fixture per finding (both chart generations),
//! `--set` parsing, `file:line:col` of every finding, hostile YAML, the cluster prerequisites against the
//! in-test API server, and an external database on the real test PostgreSQL.

use crate::support;

use std::path::PathBuf;

use serde_json::{Value, json};
use support::{
    kube::{Cluster, b64},
    pg::PgServer,
    prefect::{APP_USER, CANARY, create_app_role},
    run_once, run_sub,
};

const SET_CANARY: &str = "Set-Canary-Pw-4d2c8b";

struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Files {
        Files(tempfile::tempdir().expect("tempdir"))
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p: PathBuf = self.0.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    }
}

fn preflight(args: &[&str]) -> support::Run {
    run_sub("preflight", args, &[CANARY, SET_CANARY])
}

fn at(run: &support::Run, id: &str) -> (String, u64, u64) {
    let l = &run.result(id)["location"];
    assert!(l.is_object(), "{id} has no location: {}", run.result(id));
    (
        l["file"].as_str().unwrap_or_default().to_string(),
        l["line"].as_u64().unwrap_or(0),
        l["column"].as_u64().unwrap_or(0),
    )
}

#[test]
fn the_charts_own_defaults_of_both_generations_only_warn_about_the_tenant() {
    let root = env!("CARGO_MANIFEST_DIR");
    for (file, generation) in [
        ("values-2022.05.yaml", "before 2022.09"),
        ("values-2022.12.yaml", "2022.09 and later"),
    ] {
        let path = format!("{root}/chart/{file}");
        let run = preflight(&["-f", &path]);
        assert_eq!(run.code, 0, "{}", run.text);
        for r in run.json["results"].as_array().unwrap() {
            let expected_warn = r["id"] == "values.tenant-job";
            assert_ne!(r["status"], "fail", "{r}");
            assert_ne!(r["status"], "error", "{r}");
            assert_eq!(r["status"] == "warn", expected_warn, "{r}");
        }
        assert!(
            run.json["notices"].to_string().contains(generation),
            "{}",
            run.json["notices"]
        );
    }
    // No file at all: the newest defaults.
    let run = preflight(&[]);
    assert_eq!(run.code, 0);
    assert_eq!(run.json["summary"]["warn"], 1);
}

#[test]
fn each_finding_cites_the_key_that_caused_it() {
    let f = Files::new();
    let path = f.write(
        "values.yaml",
        "# my values\npostgresql:\n  postgresqlPassword: Set-Canary-Pw-4d2c8b\n  useSubChart: true\nui:\n  apolloApiURL: http://x/graphql\njobs:\n  createTenants:\n    enabled: true\napollo:\n  ingress:\n    enabled: true\n",
    );
    let run = preflight(&["-f", &path, "--chart-version", "2022.09.21"]);
    assert_eq!(run.code, 1, "{}", run.text);
    // A key of the old chart on the new one: ignored by Helm.
    assert_eq!(run.status("values.generation"), "fail");
    assert!(
        run.message("values.generation")
            .contains("postgresql.postgresqlPassword → postgresql.auth.password")
    );
    assert_eq!(at(&run, "values.generation"), (path.clone(), 3, 3));
    assert!(
        run.fix("values.generation")
            .contains("--set postgresql.auth.password=<value>")
    );
    // Typos, with "did you mean".
    assert_eq!(run.status("values.unknown-keys"), "warn");
    let m = run.message("values.unknown-keys");
    assert!(
        m.contains("ui.apolloApiURL") && m.contains("did you mean ui.apolloApiUrl?"),
        "{m}"
    );
    assert!(
        m.contains("jobs.createTenants") && m.contains("jobs.createTenant?"),
        "{m}"
    );
    assert_eq!(at(&run, "values.unknown-keys"), (path.clone(), 6, 3));
    // An Ingress without hosts, still a LoadBalancer.
    assert_eq!(run.status("values.ingress"), "fail");
    assert!(
        run.message("values.ingress")
            .contains("apollo.ingress.hosts is empty")
    );
    assert!(
        run.message("values.ingress")
            .contains("still a LoadBalancer")
    );
    assert_eq!(at(&run, "values.ingress"), (path.clone(), 12, 5));
    // SARIF carries the location as a physical location.
    let (_, sarif, _, _) = run_once(&[
        "preflight",
        "-o",
        "sarif",
        "-f",
        &path,
        "--chart-version",
        "2022.09.21",
    ]);
    let sarif: Value = serde_json::from_str(&sarif).expect("sarif");
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    let generation = results
        .iter()
        .find(|r| r["ruleId"] == "values.generation")
        .expect("generation result");
    let region = &generation["locations"][0]["physicalLocation"]["region"];
    assert_eq!(
        (region["startLine"].as_u64(), region["startColumn"].as_u64()),
        (Some(3), Some(3)),
        "{generation}"
    );
    // Text shows file:line:col next to the finding.
    assert!(run.text.contains(&format!("{path}:3:3")), "{}", run.text);
}

#[test]
fn database_password_findings_in_both_generations() {
    let f = Files::new();
    // New chart: the superuser's password handed to the user.
    let p = f.write("keys.yaml", "postgresql:\n  auth:\n    username: prefect\n    password: Set-Canary-Pw-4d2c8b\n    postgresPassword: another-one-77\n");
    let run = preflight(&["-f", &p]);
    assert_eq!(run.status("values.password-keys"), "fail", "{}", run.text);
    assert_eq!(at(&run, "values.password-keys").1, 4);
    assert!(
        run.fix("values.password-keys")
            .contains("--set postgresql.auth.postgresPassword=<PASSWORD>")
    );
    // Persistence with generated passwords.
    let p = f.write("persist.yaml", "postgresql:\n  auth:\n    password: null\n    postgresPassword: null\n  primary:\n    persistence:\n      enabled: true\n");
    let run = preflight(&["-f", &p]);
    assert_eq!(
        run.status("values.persistent-password"),
        "warn",
        "{}",
        run.text
    );
    assert_eq!(at(&run, "values.persistent-password").1, 7);
    assert_eq!(run.status("values.password-keys"), "fail", "{}", run.text);
    // Old chart: persistence without a constant password.
    let p = f.write(
        "old.yaml",
        "postgresql:\n  postgresqlUsername: prefect\n  persistence:\n    enabled: true\n",
    );
    let run = preflight(&["-f", &p]);
    assert_eq!(
        run.status("values.persistent-password"),
        "warn",
        "{}",
        run.text
    );
    assert!(
        run.message("values.persistent-password")
            .contains("postgresql.postgresqlPassword")
    );
    assert!(
        run.json["notices"]
            .to_string()
            .contains("postgresql.postgresqlUsername")
    );
    // A password next to existingSecret is ignored (both generations).
    for (text, key) in [
        (
            "postgresql:\n  auth:\n    existingSecret: pw\n    password: Set-Canary-Pw-4d2c8b\n    postgresPassword: Set-Canary-Pw-4d2c8b\n",
            "postgresql.auth.password",
        ),
        (
            "postgresql:\n  existingSecret: pw\n  postgresqlPassword: Set-Canary-Pw-4d2c8b\n",
            "postgresql.postgresqlPassword",
        ),
    ] {
        let p = f.write("ignored.yaml", text);
        let run = preflight(&["-f", &p]);
        assert_eq!(
            run.status("values.password-ignored"),
            "warn",
            "{}",
            run.text
        );
        assert!(
            run.message("values.password-ignored").contains(key),
            "{}",
            run.message("values.password-ignored")
        );
    }
    // The new chart's key on the old chart.
    let p = f.write(
        "mixed.yaml",
        "postgresql:\n  auth:\n    existingSecret: pw\n",
    );
    let run = preflight(&["-f", &p, "--chart-version", "2022.05.24"]);
    assert_eq!(run.status("values.generation"), "fail");
    assert!(
        run.message("values.generation")
            .contains("postgresql.auth.existingSecret → postgresql.existingSecret")
    );
}

#[test]
fn external_database_ingress_and_api_url() {
    let f = Files::new();
    let p = f.write("ext.yaml", "postgresql:\n  useSubChart: false\n");
    let run = preflight(&["-f", &p]);
    assert_eq!(run.status("values.external-db"), "fail");
    assert!(
        run.message("values.external-db")
            .contains("postgresql.externalHostname and postgresql.auth.existingSecret are not set")
    );
    assert_eq!(at(&run, "values.external-db"), (p.clone(), 2, 3));
    assert!(
        run.fix("values.external-db")
            .contains("--set postgresql.auth.existingSecret=prefect-postgresql-pwd")
    );

    let p = f.write(
        "ingress.yaml",
        "apollo:\n  service:\n    type: ClusterIP\n  ingress:\n    enabled: true\n    hosts:\n      - api.prefect.example\n    tls:\n      - secretName: api-tls\n        hosts: [api.prefect.example]\nui:\n  service:\n    type: ClusterIP\n  ingress:\n    enabled: true\n    hosts: [prefect.example]\n",
    );
    let run = preflight(&["-f", &p]);
    assert_eq!(run.status("values.ingress"), "pass", "{}", run.text);
    assert_eq!(run.status("values.ui-api-url"), "fail");
    assert!(
        run.fix("values.ui-api-url")
            .contains("--set ui.apolloApiUrl=https://api.prefect.example/graphql"),
        "{}",
        run.fix("values.ui-api-url")
    );
    // Fixed with --set; an https UI with an http API is mixed content.
    let run = preflight(&[
        "-f",
        &p,
        "--set",
        "ui.apolloApiUrl=http://api.prefect.example/graphql",
        "--set",
        "ui.ingress.tls[0].secretName=ui-tls,ui.ingress.tls[0].hosts[0]=prefect.example",
    ]);
    assert_eq!(run.status("values.ui-api-url"), "fail", "{}", run.text);
    assert!(run.message("values.ui-api-url").contains("mixed content"));
    assert_eq!(
        at(&run, "values.ui-api-url").0,
        "--set ui.apolloApiUrl=http://api.prefect.example/graphql"
    );
    let run = preflight(&[
        "-f",
        &p,
        "--set",
        "ui.apolloApiUrl=https://api.prefect.example/graphql",
    ]);
    assert_eq!(run.status("values.ui-api-url"), "pass");
    // --set-string, escaped dots, lists.
    let run = preflight(&[
        "--set-string",
        "jobs.createTenant.enabled=true",
        "--set",
        "ui.ingress.annotations.kubernetes\\.io/ingress\\.class=nginx",
    ]);
    assert_eq!(run.status("values.tenant-job"), "pass", "{}", run.text);
    assert_eq!(run.status("values.unknown-keys"), "pass", "{}", run.text);
    let run = preflight(&[
        "--set",
        "serverVersionTag=latest",
        "--set",
        "apollo.image.pullPolicy=Always",
    ]);
    assert_eq!(run.status("values.versions"), "warn", "{}", run.text);
    // --set-json, --set-literal and --set-file as a user's helm install line carries them: each
    // finding cites its own flag, and a password's value is masked wherever it is said.
    let files = Files::new();
    let url_file = files.write("url.txt", "http://prefect-apollo:4200/graphql");
    let run = preflight(&[
        "--set-json",
        r#"ui.apolloApiUrl="http://prefect-apollo.default.svc.cluster.local:4200/graphql""#,
        "--set-literal",
        &format!("postgresql.auth.password={SET_CANARY},with,commas"),
    ]);
    // A name only pods resolve, which the browser cannot: the README's server_url fault, before
    // the install.
    assert_eq!(run.status("values.ui-api-url"), "fail", "{}", run.text);
    assert!(
        run.message("values.ui-api-url")
            .contains("resolves only inside the cluster"),
        "{}",
        run.message("values.ui-api-url")
    );
    assert_eq!(
        at(&run, "values.ui-api-url").0,
        "--set-json ui.apolloApiUrl=http://prefect-apollo.default.svc.cluster.local:4200/graphql"
    );
    let run = preflight(&["--set-file", &format!("ui.apolloApiUrl={url_file}")]);
    assert_eq!(
        at(&run, "values.ui-api-url").0,
        "--set-file ui.apolloApiUrl=http://prefect-apollo:4200/graphql"
    );
    // A URL is not fetched (Helm would): a usage error that says so.
    let (code, _, err, _) = run_once(&["preflight", "--set-file", "a=https://example.com/x"]);
    assert_eq!(code, 2);
    assert!(err.contains("is a URL; the doctor reads no URL"), "{err}");
}

#[test]
fn hostile_and_broken_input() {
    let f = Files::new();
    let broken = f.write(
        "broken.yaml",
        "ui:\n  apolloApiUrl: http://x\n   bad: indent\n",
    );
    let run = preflight(&["-f", &broken]);
    assert_eq!(run.status("values.parse"), "fail");
    assert_eq!(run.code, 1);
    let (file, line, _) = at(&run, "values.parse");
    assert_eq!(
        (file.as_str(), line),
        (broken.as_str(), 3),
        "{}",
        run.message("values.parse")
    );
    let snippet = run.result("values.parse")["location"]["snippet"].as_str();
    assert!(
        snippet.is_some_and(|s| s.starts_with("3 |    bad: indent\n  | ")),
        "a snippet: {}",
        run.result("values.parse")
    );
    assert!(
        run.text.contains("        3 |    bad: indent"),
        "{}",
        run.text
    );
    // The rest of the run goes on with what could be read.
    assert_eq!(run.status("values.tenant-job"), "skip");

    let bomb = f.write("bomb.yaml", "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n");
    let deep = f.write(
        "deep.yaml",
        &format!("a: {}1{}\n", "[".repeat(5000), "]".repeat(5000)),
    );
    let huge = f.write("huge.yaml", &"k: v\n".repeat(600_000));
    let missing = f.0.path().join("missing.yaml").display().to_string();
    for (file, needle) in [(&bomb, ""), (&deep, "")] {
        let run = preflight(&["-f", file]);
        assert_eq!(run.status("values.parse"), "fail", "{file}: {}", run.text);
        assert!(
            run.message("values.parse").contains(needle),
            "{}",
            run.message("values.parse")
        );
    }
    // A values file that cannot be read (missing, a directory, a device, too large) is unreadable
    // input: exit 2 with the reason, as the README's exit-code table says.
    let dir = f.0.path().display().to_string();
    for (file, needle) in [
        (huge.as_str(), "larger than 2 MiB"),
        (missing.as_str(), "cannot read"),
        (dir.as_str(), "not a regular file"),
        ("/dev/zero", "not a regular file"),
    ] {
        let (code, out, err, _) = run_once(&["preflight", "-f", file]);
        assert_eq!(code, 2, "{file}: {err}");
        assert!(err.contains(needle), "{file}: {err}");
        assert!(out.is_empty(), "{out}");
    }
    // A bad --set or --chart-version is a usage error.
    for args in [
        &["preflight", "--set", "a[x]=1"][..],
        &["preflight", "--chart-version", "latest"],
    ] {
        let (code, _, err, _) = run_once(args);
        assert_eq!(code, 2, "{err}");
    }
}

#[test]
fn cluster_prerequisites_against_an_api_server() {
    let mut c = Cluster::default();
    c.objects.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prefect"}, "status": {"phase": "Active"}}));
    c.objects.push(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg-old", "namespace": "prefect"},
        "data": {"postgresql-password": b64(CANARY.as_bytes())}}));
    c.objects.push(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg-two", "namespace": "prefect"},
        "data": {"postgres-password": b64(SET_CANARY.as_bytes()), "password": b64(CANARY.as_bytes())}}));
    c.objects.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}));
    c.objects.push(json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "standard"}, "provisioner": "x"}));
    let server = c.start();
    let kc = server.kubeconfig();
    let f = Files::new();
    let p = f.write("v.yaml", "postgresql:\n  auth:\n    existingSecret: pg-old\n  primary:\n    persistence:\n      enabled: true\nui:\n  service:\n    type: ClusterIP\n  ingress:\n    enabled: true\n    ingressClassName: traefik\n    hosts: [prefect.example]\n    tls:\n      - secretName: ui-tls\n        hosts: [prefect.example]\n");
    let run = preflight(&[
        "-f",
        &p,
        "--kubeconfig",
        &kc,
        "-n",
        "prefect",
        "--timeout",
        "3s",
    ]);
    assert_eq!(run.status("cluster.namespace"), "pass", "{}", run.text);
    assert_eq!(run.status("cluster.db-secret"), "fail");
    assert!(
        run.message("cluster.db-secret")
            .contains("postgresql-password (charts before 2022.07) but not postgres-password")
    );
    assert_eq!(at(&run, "cluster.db-secret").1, 3);
    assert_eq!(run.status("cluster.tls-secrets"), "warn");
    assert!(
        run.fix("cluster.tls-secrets")
            .contains("kubectl create secret tls ui-tls -n prefect")
    );
    assert_eq!(run.status("cluster.ingress-class"), "fail");
    assert!(
        run.message("cluster.ingress-class")
            .contains("\"traefik\" but the cluster's IngressClasses are nginx")
    );
    assert_eq!(run.status("cluster.storage-class"), "fail", "{}", run.text);
    assert!(
        run.message("cluster.storage-class")
            .contains("no default StorageClass")
    );
    // The two passwords of one secret differ: the superuser's goes to the user.
    let run = preflight(&[
        "--kubeconfig",
        &kc,
        "-n",
        "prefect",
        "--set",
        "postgresql.auth.existingSecret=pg-two",
        "--only",
        "cluster.*",
    ]);
    assert_eq!(run.status("cluster.db-secret"), "fail", "{}", run.text);
    assert!(run.message("cluster.db-secret").contains("differs"));
    // A namespace to be created.
    let run = preflight(&[
        "--kubeconfig",
        &kc,
        "-n",
        "fresh",
        "--only",
        "cluster.namespace",
    ]);
    assert_eq!(run.status("cluster.namespace"), "warn");
    assert!(run.fix("cluster.namespace").contains("--create-namespace"));
    for h in server.hits() {
        assert_eq!(h.method, "GET", "{h:?}");
    }
    // No cluster: skipped with the reason.
    let run = preflight(&["--only", "cluster.*"]);
    assert!(
        run.message("cluster.namespace")
            .contains("no cluster configured")
    );
}

#[test]
fn an_external_database_is_checked_read_only_in_preflight() {
    let pg = PgServer::start();
    create_app_role(&pg);
    pg.sql("postgres", "CREATE DATABASE prefect_ext OWNER postgres;");
    // Without CREATE on the database: extensions not creatable, hdb_catalog not creatable.
    let url = pg.url(APP_USER, CANARY, "prefect_ext");
    let values = "postgresql:\n  useSubChart: false\n  externalHostname: db.example\n  auth:\n    existingSecret: pg\n";
    let f = Files::new();
    let p = f.write("ext.yaml", values);
    let before = pg.log().len();
    let run = preflight(&["-f", &p, "--database-url", &url]);
    assert_eq!(run.status("values.external-db"), "pass", "{}", run.text);
    assert_eq!(run.status("db.reachable"), "pass", "{}", run.text);
    assert_eq!(run.status("db.password"), "pass");
    assert_eq!(run.status("db.version"), "pass");
    assert_eq!(run.status("db.extensions"), "fail", "{}", run.text);
    assert_eq!(run.status("hasura.schema-owner"), "fail", "{}", run.text);
    assert!(
        run.message("hasura.schema-owner")
            .contains("may not create it"),
        "{}",
        run.message("hasura.schema-owner")
    );
    assert!(
        run.fix("hasura.schema-owner")
            .contains("GRANT CREATE ON DATABASE prefect_ext TO prefect;")
    );
    // With CREATE on the database (PG 15: pgcrypto and pg_trgm are trusted).
    pg.sql(
        "postgres",
        &format!("GRANT CREATE ON DATABASE prefect_ext TO {APP_USER};"),
    );
    let run = preflight(&["-f", &p, "--database-url", &url]);
    assert_eq!(run.status("hasura.schema-owner"), "pass", "{}", run.text);
    assert_eq!(run.status("db.extensions"), "warn", "{}", run.text);
    // Only reads reached the database.
    let log = pg.log()[before..].to_string();
    let statements: Vec<String> = log
        .lines()
        .filter(|l| l.contains("app=prefect-doctor"))
        .filter_map(|l| {
            let (_, rest) = l.split_once("LOG:  ")?;
            let (kind, sql) = rest.split_once(": ")?;
            (kind.starts_with("execute") || kind == "statement")
                .then(|| sql.trim().to_ascii_uppercase())
        })
        .collect();
    assert!(statements.len() >= 5, "{log}");
    for sql in statements {
        assert!(
            sql.starts_with("SELECT") || sql.starts_with("SHOW"),
            "{sql}"
        );
    }
}

#[test]
fn the_external_database_is_found_from_the_values_and_the_clusters_secret() {
    let pg = PgServer::start();
    create_app_role(&pg);
    pg.sql(
        "postgres",
        &format!("CREATE DATABASE prefect_ext OWNER {APP_USER};"),
    );
    let mut c = Cluster::default();
    c.objects.push(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg", "namespace": "default"},
        "data": {"postgres-password": b64(CANARY.as_bytes())}}));
    let server = c.start();
    let port = pg.port.to_string();
    let run = preflight(&[
        "--kubeconfig",
        &server.kubeconfig(),
        "--set",
        "postgresql.useSubChart=false,postgresql.externalHostname=127.0.0.1",
        "--set",
        &format!("postgresql.primary.service.ports.postgresql={port}"),
        "--set",
        "postgresql.auth.existingSecret=pg,postgresql.auth.database=prefect_ext",
        "--only",
        "db.*",
        "--only",
        "cluster.db-secret",
    ]);
    assert_eq!(run.status("cluster.db-secret"), "pass", "{}", run.text);
    assert_eq!(run.status("db.password"), "pass", "{}", run.text);
    let targets = run.json["targets"].to_string();
    assert!(
        targets.contains("password from secret default/pg key postgres-password"),
        "{targets}"
    );
}

/// Helm's own reading of values files and flags: `helm template` (the Helm the real control plane
/// builds) of a chart whose defaults are the chart generation's `values.yaml` and whose one
/// template prints `.Values` as JSON. `Err`: Helm's error.
fn helm_reads(
    dir: &std::path::Path,
    generation: &str,
    files: &[&str],
    flags: &[(&str, &str)],
) -> Result<Value, String> {
    let chart = dir.join(format!("chart-{generation}"));
    if !chart.join("Chart.yaml").is_file() {
        std::fs::create_dir_all(chart.join("templates")).expect("chart dir");
        std::fs::write(
            chart.join("Chart.yaml"),
            "apiVersion: v2\nname: prefect-server\nversion: 2022.12.22\n",
        )
        .expect("Chart.yaml");
        let defaults = std::fs::read_to_string(format!(
            "{}/chart/values-{generation}.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("chart values");
        std::fs::write(chart.join("values.yaml"), defaults).expect("values.yaml");
        std::fs::write(
            chart.join("templates/values.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: values\ndata:\n  values: {{ toJson .Values | quote }}\n",
        )
        .expect("template");
    }
    let mut cmd = std::process::Command::new(support::cluster::bin_dir().join("helm"));
    cmd.arg("template").arg("r").arg(&chart);
    for f in files {
        cmd.arg("-f").arg(f);
    }
    for (flag, value) in flags {
        cmd.arg(flag).arg(value);
    }
    let home = dir.join("helm-home");
    let out = cmd
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("KUBECONFIG")
        .output()
        .expect("helm template");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let doc: Value = serde_saphyr::from_str(&String::from_utf8_lossy(&out.stdout)).expect("yaml");
    Ok(serde_json::from_str(doc["data"]["values"].as_str().expect("values")).expect("json"))
}

/// The doctor's reading of the same files and flags: the merged values preflight's checks and a
/// `[values]` user check see. `Err`: the doctor's refusal (the run's usage error or a values
/// file's parse error).
fn doctor_reads(generation: &str, files: &[&str], flags: &[(&str, &str)]) -> Result<Value, String> {
    use prefect_doctor::chart::{
        set::SetKind,
        values::{Input, load},
    };
    let mut input = Input {
        chart_version: Some(
            if generation == "2022.05" {
                "2022.05.09"
            } else {
                "2022.12.22"
            }
            .to_string(),
        ),
        ..Default::default()
    };
    for f in files {
        input.files.push((
            f.to_string(),
            std::fs::read_to_string(f).map_err(|e| e.to_string()),
        ));
    }
    for (flag, value) in flags {
        let kind = SetKind::of_flag(flag).unwrap_or_else(|| panic!("{flag}"));
        input.sets.push((value.to_string(), kind));
    }
    let loaded = load(&input)?;
    if let Some(e) = loaded.errors.first() {
        return Err(match &e.location {
            Some(l) => format!("{} (line {})", e.message, l.line),
            None => e.message.clone(),
        });
    }
    Ok(loaded.values)
}

/// Numbers compared by value (Helm's JSON writes 8 and 8.0 alike).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Where two values differ (at most ten places), for the failure message.
fn differences(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    if out.len() >= 10 || same(a, b) {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let p = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => differences(v, w, &p, out),
                    (Some(v), None) => {
                        out.push(format!("{p}: Helm has {v}, the doctor has no key"))
                    }
                    (None, Some(w)) => {
                        out.push(format!("{p}: Helm has no key, the doctor has {w}"))
                    }
                    (None, None) => {}
                }
            }
        }
        _ => out.push(format!("{path}: Helm has {a}, the doctor has {b}")),
    }
}

#[test]
fn values_and_flags_are_read_as_helm_reads_them() {
    let helm = support::cluster::bin_dir().join("helm");
    if !helm.is_file() {
        assert!(
            std::env::var_os("PREFECT_DOCTOR_CLUSTER_REQUIRED").is_none(),
            "no helm at {}",
            helm.display()
        );
        eprintln!("SKIPPED: no helm built (tests/cluster/build)");
        return;
    }
    let files = Files::new();
    let dir = files.0.path().to_path_buf();
    let written = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let f = |name: &str, text: &str| {
        assert!(
            written.borrow_mut().insert(name.to_string()),
            "{name} written twice"
        );
        files.write(name, text)
    };
    let literal = f("literal.txt", "line one\nline two, with a comma\n");
    // (what, generation, files, flags)
    type Case<'a> = (&'a str, &'a str, Vec<String>, Vec<(&'a str, String)>);
    let cases: Vec<Case> = vec![
        ("chart defaults alone", "2022.12", vec![], vec![]),
        ("the older generation's defaults", "2022.05", vec![], vec![]),
        (
            "YAML 1.1 booleans",
            "2022.12",
            vec![f(
                "bool.yaml",
                "agent:\n  enabled: yes\nui:\n  enabled: off\njobs:\n  createTenant:\n    enabled: On\n",
            )],
            vec![],
        ),
        (
            "YAML 1.1 octal and other numbers",
            "2022.12",
            vec![f(
                "num.yaml",
                "apollo:\n  replicas: 010\n  a: 0o10\n  b: 0x1F\n  c: 1_000\n  d: 190:20:30\n  h: 1e3\n  i: +12\n  j: 0b101\n  k: 007.5\n  l: 0777\n  m: -010\n  n: '010'\n  o: 0.5\n",
            )],
            vec![],
        ),
        (
            "infinity, which JSON cannot hold",
            "2022.12",
            vec![f("inf.yaml", "apollo:\n  e: .inf\n")],
            vec![],
        ),
        (
            "not a number, which JSON cannot hold",
            "2022.12",
            vec![f("nan.yaml", "apollo:\n  g: .NaN\n")],
            vec![],
        ),
        (
            "YAML 1.1 nulls and y/n",
            "2022.12",
            vec![f(
                "null.yaml",
                "ui:\n  a: ~\n  b: Null\n  c: y\n  d: n\n  e: NO\n  f: True\n  g: 'y'\n",
            )],
            vec![],
        ),
        (
            "keys YAML 1.1 reads as booleans and numbers",
            "2022.12",
            vec![f(
                "keys.yaml",
                "labels:\n  y: a\n  n: b\n  on: c\n  010: d\n  'off': e\n",
            )],
            vec![],
        ),
        (
            "a syntax error",
            "2022.12",
            vec![f("bad.yaml", "a: [1\n")],
            vec![],
        ),
        (
            "a document that is not a mapping",
            "2022.12",
            vec![f("notmap.yaml", "- a\n- b\n")],
            vec![],
        ),
        (
            "a user null for a key the chart does not have",
            "2022.12",
            vec![f("newnull.yaml", "extra: null\nui:\n  extra: ~\n")],
            vec![("--set", "other=null".to_string())],
        ),
        (
            "files merged in order, nulls deleting chart defaults",
            "2022.12",
            vec![
                f(
                    "one.yaml",
                    "agent:\n  enabled: true\n  image:\n    tag: one\nui:\n  apolloApiUrl: http://one/graphql\n",
                ),
                f(
                    "two.yaml",
                    "agent:\n  image:\n    tag: two\nui:\n  apolloApiUrl: null\nannotations: null\n",
                ),
            ],
            vec![],
        ),
        (
            "a null in the chart's own defaults",
            "2022.05",
            vec![],
            vec![],
        ),
        (
            "empty and comment-only files",
            "2022.12",
            vec![f("empty.yaml", ""), f("comment.yaml", "# nothing here\n")],
            vec![],
        ),
        (
            "--set typing, lists, escapes",
            "2022.12",
            vec![],
            vec![
                (
                    "--set",
                    "apollo.replicas=3,agent.enabled=true,ui.apolloApiUrl=null,a.b=007,c=0,d=-5"
                        .to_string(),
                ),
                (
                    "--set",
                    "ui.ingress.hosts[1].host=h.example,list={x,y,z}".to_string(),
                ),
                (
                    "--set",
                    "annotations.kubernetes\\.io/ingress\\.class=nginx,pw=a\\,b".to_string(),
                ),
            ],
        ),
        (
            "list index sets into an existing list",
            "2022.12",
            vec![f("list.yaml", "extra:\n  - a\n  - b\n  - c\n")],
            vec![("--set", "extra[1]=B".to_string())],
        ),
        (
            "--set-string",
            "2022.12",
            vec![],
            vec![(
                "--set-string",
                "apollo.replicas=3,agent.enabled=true,n=null".to_string(),
            )],
        ),
        (
            "--set-json",
            "2022.12",
            vec![],
            vec![
                (
                    "--set-json",
                    r#"agent.env=[{"name":"NAMESPACE","value":"flows"}],apollo.replicas=2"#
                        .to_string(),
                ),
                (
                    "--set-json",
                    r#"{"ui": {"apolloApiUrl": "http://j/graphql", "n": null}}"#.to_string(),
                ),
            ],
        ),
        (
            "--set-literal",
            "2022.12",
            vec![],
            vec![(
                "--set-literal",
                "postgresql.auth.password=a,b=c\\d{e}".to_string(),
            )],
        ),
        (
            "--set-file",
            "2022.12",
            vec![],
            vec![("--set-file", format!("ui.motd={literal}"))],
        ),
        (
            "Helm's order of the flags, whatever the command line's",
            "2022.12",
            vec![f("order.yaml", "k: file\n")],
            vec![
                ("--set-literal", "k=literal".to_string()),
                ("--set-string", "k=string".to_string()),
                ("--set", "k=set".to_string()),
                ("--set-json", r#"k="json""#.to_string()),
            ],
        ),
        (
            "several documents in one file",
            "2022.12",
            vec![f("multi.yaml", "a: 1\n---\nb: 2\n")],
            vec![],
        ),
    ];
    // Flags both must refuse.
    let mut cases = cases;
    for (what, flag, expr) in [
        ("--set without a value", "--set", "a.b"),
        (
            "--set with an index that is not a number",
            "--set",
            "a[x]=1",
        ),
        ("--set-json that does not parse", "--set-json", "a={bad"),
        (
            "--set-json object that does not parse",
            "--set-json",
            "{\"a\": }",
        ),
        (
            "--set-file of a missing file",
            "--set-file",
            "a=/nonexistent/file",
        ),
    ] {
        cases.push((what, "2022.12", vec![], vec![(flag, expr.to_string())]));
    }
    let line = regex::Regex::new(r"line (\d+)").expect("regex");
    let mut differ = Vec::new();
    for (what, generation, paths, flags) in &cases {
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        let flags: Vec<(&str, &str)> = flags.iter().map(|(f, v)| (*f, v.as_str())).collect();
        let helm = helm_reads(&dir, generation, &paths, &flags);
        let doctor = doctor_reads(generation, &paths, &flags);
        match (&helm, &doctor) {
            (Ok(h), Ok(d)) if same(h, d) => {}
            (Ok(h), Ok(d)) => {
                let mut places = Vec::new();
                differences(h, d, "", &mut places);
                differ.push(format!("{what}: {}", places.join("; ")));
            }
            (Err(h), Err(d)) => {
                // Both refuse: where Helm names a line, the doctor names the same one.
                if let Some(n) = line.captures(h).map(|c| c[1].to_string())
                    && !line.captures_iter(d).any(|c| c[1] == n)
                {
                    differ.push(format!(
                        "{what}: Helm refuses at line {n} ({}), the doctor: {d}",
                        h.trim()
                    ));
                }
            }
            (Ok(_), Err(e)) => {
                differ.push(format!("{what}: Helm reads it, the doctor refuses: {e}"))
            }
            (Err(e), Ok(_)) => differ.push(format!(
                "{what}: Helm refuses ({}), the doctor reads it",
                e.trim()
            )),
        }
    }
    assert!(
        differ.is_empty(),
        "the doctor and Helm differ:\n{}",
        differ.join("\n")
    );
}
