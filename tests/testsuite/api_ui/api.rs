//! Apollo's checks: healthy, refused, unresolvable, silent, HTML, GraphQL errors, huge bodies,
//! redirects, no tenant, credentials in its URL.

use super::*;

#[test]
fn healthy_install_passes_and_only_reads() {
    let apollo = Apollo::default().start();
    let ui = ui(&graphql(&apollo));
    let run = probe(Some(&graphql(&apollo)), Some(&ui.url), &[]);
    for id in [
        "api.reachable",
        "api.version",
        "ui.settings-json",
        "ui.server-url",
        "tenant.exists",
    ] {
        assert_eq!(run.status(id), "pass", "{id}: {}", run.message(id));
    }
    assert_eq!(run.code, 0, "{}", run.text);
    assert!(run.message("api.reachable").contains("\"👋\""));
    assert_eq!(
        run.message("api.version"),
        "Prefect Server API 2022.09.23 (Prefect Core 1.4.0)"
    );
    assert_eq!(evidence(&run, "tenant.exists", "path"), "api");
    assert!(
        run.message("ui.server-url")
            .contains("allows the UI's origin")
    );
    // The database was not given: its checks say so instead of failing on localhost:5432.
    assert_eq!(run.status("db.reachable"), "skip");
    assert!(run.message("db.password").contains("no database given"));
    // Targets name their sources.
    let targets = run.json["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{targets:?}");
    assert_eq!(targets[0]["source"], "--api-url");

    // Read-only, and polite: queries only, our User-Agent, GraphQL as JSON.
    let hits: Vec<Hit> = apollo.hits().into_iter().chain(ui.hits()).collect();
    assert!(!hits.is_empty());
    for h in &hits {
        assert!(
            matches!(h.method.as_str(), "GET" | "POST" | "OPTIONS"),
            "{h:?}"
        );
        assert!(
            h.header("user-agent")
                .is_some_and(|u| u.starts_with("prefect-doctor/")),
            "{h:?}"
        );
        if h.method == "POST" {
            let q = h.query().expect("a GraphQL query");
            assert!(q.trim_start().starts_with("query"), "{q}");
            assert!(!q.contains("mutation"), "{q}");
            assert_eq!(h.header("content-type"), Some("application/json"));
        }
    }
    // The browser's preflight was made from the UI's origin.
    assert!(apollo.hits().iter().any(|h| h.method == "OPTIONS"
        && h.header("origin") == Some(ui.url.as_str())
        && h.header("access-control-request-method") == Some("POST")));
}

#[test]
fn refused_api() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/graphql");
    let run = probe(Some(&url), None, &[]);
    assert_eq!(run.status("api.reachable"), "fail");
    assert_eq!(evidence(&run, "api.reachable", "failure"), "refused");
    assert!(run.message("api.reachable").contains("connection refused"));
    assert!(
        run.fix("api.reachable")
            .contains("kubectl port-forward svc/<release>-apollo 4200:4200")
    );
    assert_eq!(run.status("api.version"), "skip");
    assert_eq!(run.status("tenant.exists"), "skip");
    assert!(run.message("tenant.exists").contains("connection refused"));
    assert_eq!(run.code, 1);
}

#[test]
fn unresolvable_api_host() {
    let run = probe(
        Some("http://prefect-apollo.invalid:4200/graphql"),
        None,
        &[],
    );
    assert_eq!(run.status("api.reachable"), "fail");
    assert_eq!(evidence(&run, "api.reachable", "failure"), "dns");
    assert!(
        run.message("api.reachable")
            .contains("\"prefect-apollo.invalid\" does not resolve")
    );
}

#[test]
fn a_server_that_never_answers_costs_one_timeout() {
    let hang = Server::start(|_| Reply::Hang);
    let ui = ui(&graphql(&hang));
    let started = std::time::Instant::now();
    let out = doctor()
        .args([
            "check",
            "-o",
            "json",
            "--timeout",
            "2s",
            "--api-url",
            &graphql(&hang),
            "--ui-url",
            &ui.url,
        ])
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let result = |id: &str| result_of(&json, id);
    let api = result("api.reachable");
    assert_eq!(api["status"], "fail", "{api}");
    assert_eq!(api["evidence"]["failure"], "timeout");
    assert!(
        api["message"]
            .as_str()
            .unwrap()
            .contains("no answer within 2s while waiting for the response"),
        "{api}"
    );
    assert_eq!(result("ui.server-url")["status"], "fail");
    assert_eq!(result("tenant.exists")["status"], "skip");
    // Three checks send the dead server three different requests, at once: the run costs one
    // timeout (2 s), not three in a row (6 s). The bound leaves ample room for a loaded machine.
    assert!(
        elapsed < std::time::Duration::from_millis(3900),
        "took {elapsed:?}"
    );
    // Every request the server got was a distinct one: none was sent twice.
    let hits = hang.hits();
    let mut seen = std::collections::HashSet::new();
    for h in &hits {
        assert!(
            seen.insert((
                h.method.clone(),
                h.path.clone(),
                h.body.clone(),
                h.header("origin").map(str::to_string)
            )),
            "sent twice: {h:?}"
        );
    }
}

#[test]
fn html_where_graphql_was_expected() {
    // The API URL points at the UI (index.html for every path).
    let apollo = Apollo::default().start();
    let ui = ui(&graphql(&apollo));
    let run = probe(Some(&format!("{}/graphql", ui.url)), None, &[]);
    assert_eq!(run.status("api.reachable"), "fail");
    assert_eq!(evidence(&run, "api.reachable", "failure"), "html");
    let m = run.message("api.reachable");
    assert!(
        m.contains("answered with an HTML page (HTTP 200 OK, title \"Prefect Server\")"),
        "{m}"
    );
    assert!(
        run.fix("api.reachable")
            .contains("something other than Prefect's Apollo")
    );

    // An ingress with no rule for the host: its default backend.
    let backend = Server::start(default_backend);
    let run = run_api(&graphql(&backend));
    assert_eq!(evidence(&run, "api.reachable", "failure"), "http-status");
    assert!(run.message("api.reachable").contains(
        "answered HTTP 404 Not Found without a GraphQL answer: \"default backend - 404\""
    ));
}

fn run_api(url: &str) -> support::Run {
    probe(Some(url), None, &[])
}

#[test]
fn graphql_errors_are_quoted() {
    // Hasura's own endpoint answers 200 with errors.
    let hasura = Server::start(|_| {
        Reply::json(
            200,
            &json!({"errors": [{"extensions": {"path": "$.selectionSet.hello", "code": "validation-failed"},
                "message": "field \"hello\" not found in type: 'query_root'"}]}),
        )
    });
    let run = run_api(&format!("{}/v1/graphql", hasura.url));
    assert_eq!(run.status("api.reachable"), "fail");
    assert!(
        run.message("api.reachable").contains(
            "answered with GraphQL errors (HTTP 200 OK): \"field \\\"hello\\\" not found in type: 'query_root'\" [validation-failed]"
        ),
        "{}",
        run.message("api.reachable")
    );
    // A GraphQL 400, as Apollo answers a query it cannot validate.
    let strict = Server::start(|_| {
        Reply::json(
            400,
            &json!({"errors": [{"message": "Cannot query field \"hello\" on type \"Query\".",
                "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}, {"message": "second"}]}),
        )
    });
    let run = run_api(&graphql(&strict));
    assert!(run.message("api.reachable").contains(
        "(HTTP 400 Bad Request): \"Cannot query field \\\"hello\\\" on type \\\"Query\\\".\" [GRAPHQL_VALIDATION_FAILED] (+1 more)"
    ));
}

#[test]
fn huge_body_is_cut_off() {
    let huge = Server::start(|_| Reply::new(200, "application/json", vec![b' '; 3 << 20]));
    let run = run_api(&graphql(&huge));
    assert_eq!(evidence(&run, "api.reachable", "failure"), "too-large");
    assert!(
        run.message("api.reachable")
            .contains("larger than 1024 KiB")
    );
}

#[test]
fn redirects_are_followed_reported_and_bounded() {
    // A loop.
    let looping = Server::start(|h| {
        let to = if h.path == "/graphql" {
            "/a"
        } else {
            "/graphql"
        };
        Reply::new(302, "text/html", "").header("location", to)
    });
    let run = run_api(&graphql(&looping));
    assert_eq!(evidence(&run, "api.reachable", "failure"), "redirect-loop");
    let m = run.message("api.reachable");
    assert!(m.contains("redirect loop: 302"), "{m}");

    // An endless chain.
    let chain = Server::start(|h| {
        let n: u32 = h.path.trim_start_matches("/r").parse().unwrap_or(0);
        Reply::new(307, "text/html", "").header("location", &format!("/r{}", n + 1))
    });
    let run = run_api(&graphql(&chain));
    assert_eq!(
        evidence(&run, "api.reachable", "failure"),
        "too-many-redirects"
    );

    // A permanent redirect that keeps the method reaches Apollo, and the report says so.
    let apollo = Apollo::default();
    let moved = Server::start(move |h| {
        if h.path == "/graphql" {
            Reply::new(308, "text/plain", "").header("location", "/")
        } else {
            apollo.answer(h)
        }
    });
    let run = run_api(&graphql(&moved));
    assert_eq!(run.status("api.reachable"), "pass");
    assert!(
        run.message("api.reachable").contains(&format!(
            "(redirected: 308 {}/graphql → {}/)",
            moved.url, moved.url
        )),
        "{}",
        run.message("api.reachable")
    );
    assert_eq!(
        evidence(&run, "api.reachable", "response")["redirects"][0]["status"],
        308
    );
}

#[test]
fn no_tenant() {
    let apollo = Apollo {
        tenants: vec![],
        ..Apollo::default()
    }
    .start();
    let run = run_api(&graphql(&apollo));
    assert_eq!(run.status("tenant.exists"), "fail");
    assert_eq!(evidence(&run, "tenant.exists", "path"), "api");
    assert!(
        run.message("tenant.exists")
            .starts_with("no tenant (from the API at")
    );
    let fix = run.fix("tenant.exists");
    assert!(
        fix.contains("--set jobs.createTenant.enabled=true"),
        "{fix}"
    );
    assert!(fix.contains(
        "prefect backend server && prefect server create-tenant --name default --slug default"
    ));

    // The error Prefect's client raises, if a server (or proxy) answers with it.
    let says = Server::start(|h| {
        if h.query().is_some_and(|q| q.contains("tenant")) {
            Reply::json(
                200,
                &json!({"errors": [{"message": "Your Prefect Server instance has no tenants. Create a tenant with `prefect server create-tenant`"}]}),
            )
        } else {
            Apollo::default().answer(h)
        }
    });
    let run = run_api(&graphql(&says));
    assert_eq!(run.status("tenant.exists"), "fail");
    assert!(run.message("tenant.exists").contains("has no tenants"));
}

#[test]
fn credentials_in_the_api_url_never_show() {
    let apollo = Apollo::default().start();
    let url = format!("http://admin:{CANARY}@{}/graphql", apollo.addr);
    // `check` asserts the canary is absent from every format.
    let run = probe(Some(&url), None, &[]);
    assert_eq!(run.status("api.reachable"), "pass");
    assert!(run.message("api.reachable").contains("admin:****@"));
}
