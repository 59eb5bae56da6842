//! `preflight` end to end on the built binary: a values fixture per finding (both chart generations),
//! `--set` parsing, `file:line:col` of every finding, hostile YAML, the cluster prerequisites against the
//! in-test API server, and an external database on the real test PostgreSQL.

mod support;

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
