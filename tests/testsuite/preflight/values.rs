//! Preflight on the values alone: the chart's defaults of both generations, each finding citing its
//! key, passwords, external databases, ingress and API URL, hostile input.

use super::*;

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
