//! Bundles recorded from a run replay to the same verdicts, hold no secret, and let `fix` plan
//! without ever applying.

use super::*;

/// Records a run against `pg` (and an Apollo and UI), stops every server, re-analyses the bundle and
/// compares; returns the bundle's files.
fn record_stop_replay(
    pg: PgServer,
    apollo: Apollo,
    db_url: impl Fn(&PgServer) -> String,
    dead_api: bool,
    extra: &[&str],
) -> BTreeMap<String, Vec<u8>> {
    let api = apollo.start();
    let ui = ui(&format!("{}/graphql", api.url));
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(&pg);
    let api_url = if dead_api {
        // Nothing listens on the discard port.
        "http://127.0.0.1:9/graphql".to_string()
    } else {
        format!("{}/graphql", api.url)
    };
    let ui_url = ui.url.clone();
    let args = [
        &[
            "--database-url",
            url.as_str(),
            "--api-url",
            &api_url,
            "--ui-url",
            &ui_url,
        ][..],
        extra,
    ]
    .concat();
    let (code, path, out) = bundle(dir.path(), &args);
    assert!(out.contains("bundle written: "), "{out}");
    assert!(out.contains("re-analyse it with: prefect-doctor check --from"));
    let files = unpack(&path);
    let recorded = json_of(&files, "report.json");
    assert_eq!(recorded["exit_code"].as_i64(), Some(i64::from(code)));

    // Nothing to reach any more: every answer must come from the bundle.
    let log_path = pg.log_path();
    drop(pg);
    drop(api);
    drop(ui);
    let log_before = std::fs::read_to_string(&log_path).unwrap_or_default();
    for format in ["json", "text"] {
        let (c, _, _, _) = run_once_in(
            &BTreeMap::new(),
            &["check", "--from", &path.display().to_string(), "-o", format],
        );
        assert_eq!(c, code, "{format}: the replay's exit code is the run's");
    }
    let (replay_code, replayed, _) = replay(&path, &[]);
    assert_eq!(replay_code, code);
    assert_same_verdicts(&recorded, &replayed, &["prefect."]);
    assert!(
        replayed["notices"][0]
            .as_str()
            .unwrap()
            .contains("re-analysed from the bundle"),
        "{replayed:#}"
    );
    assert_eq!(replayed["targets"], recorded["targets"]);
    assert_eq!(
        std::fs::read_to_string(&log_path).unwrap_or_default(),
        log_before,
        "the replay reached no database"
    );
    files
}

#[test]
fn a_healthy_install_replays_to_the_same_verdicts() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    record_stop_replay(
        pg,
        Apollo::default(),
        |pg| pg.url(APP_USER, CANARY, "prefect"),
        false,
        &[],
    );
}

#[test]
fn a_broken_install_replays_to_the_same_findings_and_fixes() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            extensions: false,
            db_timezone: Some("Europe/Paris".into()),
            hdb_schema_owner: Some("cloudsqladmin".into()),
            hdb_function_owner: Some("postgres".into()),
            tenant: false,
            ..Seed::healthy("prefect")
        },
    );
    let files = record_stop_replay(
        pg,
        Apollo {
            tenants: vec![],
            ..Apollo::default()
        },
        |pg| pg.url(APP_USER, CANARY, "prefect"),
        false,
        &[],
    );
    let recorded = json_of(&files, "report.json");
    let failing: Vec<&str> = recorded["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail")
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for id in ["tenant.exists", "hasura.schema-owner", "db.extensions"] {
        assert!(failing.contains(&id), "{id} fails in {failing:?}");
    }
}

#[test]
fn a_refused_password_and_a_dead_api_replay_too() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    // The wrong password, and an API that answers nothing useful.
    let files = record_stop_replay(
        pg,
        Apollo {
            version: "2022.09.23",
            ..Apollo::default()
        },
        |pg| pg.url(APP_USER, "not-the-password-c4n4ry", "prefect"),
        true,
        &["--timeout", "2s"],
    );
    let recorded = json_of(&files, "report.json");
    let result = |id: &str| {
        recorded["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(result("db.password")["status"], "fail");
    assert_eq!(result("api.reachable")["status"], "fail");
    assert!(
        result("api.reachable")["message"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{:#}",
        result("api.reachable")
    );
    let all = files
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect::<String>();
    assert!(!all.contains("not-the-password-c4n4ry"));
}

#[test]
fn no_secret_enters_the_bundle_and_redact_patterns_hide_the_rest() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let ui_secret = "ui-settings-canary-77Qx";
    // The API behind an ingress that pins sessions with a cookie (nginx's INGRESSCOOKIE): a secret
    // the run cannot know, in a header.
    let cookie = "ingress-cookie-canary-5Tq2";
    let apollo = Apollo::default();
    let api = Server::start(move |hit| {
        apollo.answer(hit).header(
            "set-cookie",
            &format!("INGRESSCOOKIE={cookie}; Path=/; HttpOnly"),
        )
    });
    // A UI whose server_url carries credentials (a canary of its own).
    let ui = ui(&format!(
        "http://admin:{ui_secret}@127.0.0.1:{}/graphql",
        api.port()
    ));
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url(APP_USER, CANARY, "prefect");
    let (_, path, out) = bundle(
        dir.path(),
        &[
            "--database-url",
            &url,
            "--api-url",
            &format!("{}/graphql", api.url),
            "--ui-url",
            &ui.url,
            "--redact",
            r"127\.0\.0\.1",
        ],
    );
    assert!(!out.contains(CANARY));
    let files = unpack(&path);
    // No cluster: the database's facts are the only file for people.
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [
            "database/facts.json",
            "manifest.json",
            "report.json",
            "session.json",
            "tape.json"
        ]
    );
    for (name, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        for secret in [CANARY, ui_secret, SUPERUSER_PASSWORD, cookie] {
            assert!(!text.contains(secret), "{secret} in {name}");
        }
        assert!(
            !text.contains("127.0.0.1"),
            "the --redact pattern's matches are gone from {name}"
        );
    }
    let manifest = json_of(&files, "manifest.json");
    assert_eq!(manifest["format"], 1);
    assert_eq!(manifest["redact_patterns"], 1);
    let command_line = manifest["command_line"].to_string();
    assert!(command_line.contains("--database-url"));
    assert!(!command_line.contains(CANARY));
    // Still a bundle the checks can read.
    let (code, replayed, err) = replay(&path, &[]);
    assert_ne!(code, 2, "{err}");
    assert!(replayed["results"].as_array().unwrap().len() > 10);

    // The password given as PGPASSWORD, not in the URL: just as absent.
    let from_env = dir.path().join("env.tar.gz");
    let target = from_env.display().to_string();
    let env = BTreeMap::from([("PGPASSWORD".to_string(), CANARY.to_string())]);
    let bare = format!("postgres://{APP_USER}@127.0.0.1:{}/prefect", pg.port);
    let (code, out, err, _) = run_once_in(
        &env,
        &["bundle", "--output-file", &target, "--database-url", &bare],
    );
    assert_ne!(code, 2, "{out}{err}");
    let files = unpack(&from_env);
    let report = json_of(&files, "report.json");
    assert!(
        report.to_string().contains("PGPASSWORD"),
        "the run used PGPASSWORD: {report:#}"
    );
    for (name, bytes) in &files {
        assert!(
            !String::from_utf8_lossy(bytes).contains(CANARY),
            "PGPASSWORD's value in {name}"
        );
    }
}

#[test]
fn a_check_whose_data_the_bundle_lacks_skips_saying_so() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url(APP_USER, CANARY, "prefect");
    // Recorded with the database checks only: the API's and UI's answers are not in it.
    let (_, path, _) = bundle(dir.path(), &["--database-url", &url, "--only", "db.*"]);
    drop(pg);
    // A user check whose query the recorded run never sent.
    let checks = dir.path().join("budget.toml");
    std::fs::copy("examples/checks/table-budget.toml", &checks).unwrap();
    let (_, replayed, err) = replay(
        &path,
        &[
            "--checks",
            &checks.display().to_string(),
            "--only",
            "db.*",
            "--only",
            "site.*",
        ],
    );
    let results = replayed["results"].as_array().unwrap();
    let user = results
        .iter()
        .find(|r| r["source"] != "builtin")
        .unwrap_or_else(|| panic!("the user check ran: {replayed:#}\n{err}"));
    assert_eq!(user["status"], "skip", "{user:#}");
    assert!(
        user["message"]
            .as_str()
            .unwrap()
            .contains("not in the bundle: the query"),
        "{user:#}"
    );
    let reachable = results.iter().find(|r| r["id"] == "db.reachable").unwrap();
    assert_eq!(reachable["status"], "pass");
}

/// `fix --from BUNDLE` plans from what the bundle recorded, as a dry run that says so, with nothing
/// live to reach; it can never apply (exit 2 before anything is read or contacted).
#[test]
fn fix_plans_from_a_bundle_and_never_applies() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            db_timezone: Some("Europe/Paris".into()),
            hdb_function_owner: Some("postgres".into()),
            ..Seed::healthy("prefect")
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url(APP_USER, CANARY, "prefect");
    let (code, path, _) = bundle(
        dir.path(),
        &[
            "--database-url",
            &url,
            "--only",
            "db.*",
            "--only",
            "hasura.*",
        ],
    );
    assert_eq!(code, 1);
    drop(pg);
    let p = path.display().to_string();
    let (code, out, err, _) =
        run_once_in(&BTreeMap::new(), &["fix", "--from", &p, "--color", "never"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("planned from a support bundle: nothing is changed"),
        "{out}"
    );
    assert!(
        out.contains("ALTER DATABASE prefect SET timezone TO 'UTC';"),
        "{out}"
    );
    assert!(
        out.contains("`fix --apply` run against the install itself"),
        "{out}"
    );
    assert!(!out.contains(CANARY) && !err.contains(CANARY));
    let (code, out, err, _) = run_once_in(&BTreeMap::new(), &["fix", "--from", &p, "-o", "json"]);
    assert_eq!(code, 1, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["mode"], "bundle");
    for refused in [
        vec!["fix", "--from", p.as_str(), "--apply", "--yes"],
        vec![
            "fix",
            "--from",
            p.as_str(),
            "--admin-url",
            "postgres://postgres@127.0.0.1/x",
        ],
    ] {
        let (code, out, err, _) = run_once_in(&BTreeMap::new(), &refused);
        assert_eq!(code, 2, "{refused:?}: {out}{err}");
        assert!(err.contains("can never change anything"), "{err}");
        assert!(out.is_empty());
    }
}
