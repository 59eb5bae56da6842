//! The API and UI side, end to end on the built binary, against in-process servers that answer as
//! Prefect's Apollo and the UI's nginx do: one scenario per failure, and a healthy install.

use crate::support;

use std::sync::Arc;

use serde_json::{Value, json};
use support::{
    check, doctor,
    http::{Apollo, Hit, Reply, Server, default_backend, nginx_404, spa_fallback, ui, ui_answer},
    result_of,
};

const CANARY: &str = "Canary-Basic-Auth-7f3e9c";

/// `--api-url`, `--ui-url` and the rest, with the database left out.
fn probe(api: Option<&str>, ui_url: Option<&str>, extra: &[&str]) -> support::Run {
    let mut args: Vec<&str> = vec!["--timeout", "2s"];
    if let Some(a) = api {
        args.extend(["--api-url", a]);
    }
    if let Some(u) = ui_url {
        args.extend(["--ui-url", u]);
    }
    args.extend_from_slice(extra);
    check(&args, &[CANARY])
}

fn graphql(s: &Server) -> String {
    format!("{}/graphql", s.url)
}

fn evidence<'a>(run: &'a support::Run, id: &str, key: &str) -> &'a Value {
    &run.result(id)["evidence"][key]
}

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
fn settings_json_failures() {
    let placeholder = ui("PREFECT_SERVER__APOLLO_URL");
    let run = probe(None, Some(&placeholder.url), &[]);
    assert_eq!(run.status("ui.settings-json"), "fail");
    assert!(
        run.message("ui.settings-json")
            .contains("still holds the placeholder")
    );
    assert!(
        run.fix("ui.settings-json")
            .contains("--set ui.apolloApiUrl=")
    );
    assert_eq!(run.status("ui.server-url"), "skip");
    // The API is the one the UI names; it cannot be known.
    assert_eq!(run.status("api.reachable"), "skip");

    let not_found = Server::start(|_| nginx_404());
    let run = probe(None, Some(&not_found.url), &[]);
    assert_eq!(run.status("ui.settings-json"), "fail");
    assert!(
        run.message("ui.settings-json")
            .contains("settings.json answered HTTP 404 Not Found")
    );

    let spa = Server::start(spa_fallback);
    let run = probe(None, Some(&spa.url), &[]);
    assert!(
        run.message("ui.settings-json")
            .contains("answered with an HTML page (title \"Prefect Server\")")
    );
    assert!(
        run.fix("ui.settings-json")
            .contains("Something other than the Prefect UI")
    );

    let garbage = Server::start(|h| ui_answer(h, "{\"server_url\": \"http://x\", "));
    let run = probe(None, Some(&garbage.url), &[]);
    assert!(
        run.message("ui.settings-json")
            .contains("is not valid JSON")
    );

    let no_key = Server::start(|h| ui_answer(h, "{\"base_url\": \"/\"}"));
    let run = probe(None, Some(&no_key.url), &[]);
    assert!(
        run.message("ui.settings-json")
            .contains("has no server_url key (keys: base_url)")
    );
}

#[test]
fn server_url_with_a_cluster_dns_name() {
    let ui = ui("http://prefect-apollo.default:4200/graphql");
    let run = probe(None, Some(&ui.url), &[]);
    assert_eq!(run.status("ui.settings-json"), "pass");
    assert_eq!(run.status("ui.server-url"), "fail");
    let m = run.message("ui.server-url");
    assert!(m.contains("the chart's Apollo service name"), "{m}");
    let fix = run.fix("ui.server-url");
    // Release and namespace come from the name itself.
    assert!(
        fix.contains("helm upgrade prefect prefecthq/prefect-server -n default"),
        "{fix}"
    );
    assert!(fix.contains("--set ui.apolloApiUrl=http://<EXTERNAL-IP>:4200/graphql"));
    assert!(fix.contains("localStorage.removeItem('server_url')"));
    // Said before connecting: the only request that name got was from api.reachable (DNS).
    assert_eq!(evidence(&run, "api.reachable", "failure"), "dns");
}

#[test]
fn localhost_on_a_remote_ui() {
    let ui = ui("http://localhost:4200/graphql");
    let host = format!("prefect-ui.example.com:{}", ui.port());
    let resolve = format!("prefect-ui.example.com:{}:127.0.0.1", ui.port());
    let run = probe(
        None,
        Some(&format!("http://{host}")),
        &["--resolve", &resolve],
    );
    assert_eq!(run.status("ui.settings-json"), "pass");
    assert_eq!(run.status("ui.server-url"), "fail");
    assert!(
        run.message("ui.server-url")
            .contains("localhost is the user's own machine")
    );
    assert!(
        run.fix("ui.server-url")
            .contains("kubectl port-forward svc/<release>-apollo")
    );
}

struct Pki {
    ca_pem: String,
    config: Arc<rustls::ServerConfig>,
}

fn pki(name: &str) -> Pki {
    let (config, ca_pem) = support::http::tls_server_pki(name, "prefect-doctor HTTP test CA");
    Pki { ca_pem, config }
}

#[test]
fn https_ui_verification_mixed_content_and_insecure() {
    let pki = pki("prefect.example.com");
    let settings = "{\"server_url\": \"http://api.example.com:4200/graphql\", \"base_url\": \"/\"}"
        .to_string();
    let ui = Server::start_with_tls(move |h| ui_answer(h, &settings), Some(pki.config.clone()));
    let ui_url = format!("https://prefect.example.com:{}", ui.port());
    let resolve = format!("prefect.example.com:{}:127.0.0.1", ui.port());

    // Verified by default: an unknown CA fails, and says it is TLS.
    let run1 = probe(None, Some(&ui_url), &["--resolve", &resolve]);
    assert_eq!(run1.status("ui.settings-json"), "fail");
    assert_eq!(evidence(&run1, "ui.settings-json", "failure"), "tls");
    assert!(run1.message("ui.settings-json").contains("TLS failed"));

    // Trusted through SSL_CERT_FILE, as OpenSSL tools do: then mixed content is the finding.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let out = doctor()
        .env("SSL_CERT_FILE", &ca)
        .args([
            "check",
            "-o",
            "json",
            "--ui-url",
            &ui_url,
            "--resolve",
            &resolve,
        ])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let find = |id: &str| result_of(&json, id);
    assert_eq!(find("ui.settings-json")["status"], "pass", "{json}");
    let server_url = find("ui.server-url");
    assert_eq!(server_url["status"], "fail");
    assert!(
        server_url["message"]
            .as_str()
            .unwrap()
            .contains("browsers block this mixed content")
    );
    assert!(
        server_url["fix"]
            .as_str()
            .unwrap()
            .contains("--set ui.apolloApiUrl=https://api.example.com/graphql")
    );
    assert_eq!(json["notices"], json!([]));

    // --insecure gets through too, and the report says so loudly, in every format.
    let run2 = probe(None, Some(&ui_url), &["--resolve", &resolve, "--insecure"]);
    assert_eq!(run2.status("ui.settings-json"), "pass");
    assert!(
        run2.json["notices"][0]
            .as_str()
            .unwrap()
            .contains("--insecure: HTTPS certificates were NOT verified")
    );
    // At the top, before the first check, and again at the bottom.
    let top = run2
        .text
        .find("‼ --insecure")
        .expect("notice in the text report");
    assert!(top < run2.text.find("\nUI\n").unwrap(), "{}", run2.text);
    assert!(
        run2.text
            .trim_end()
            .ends_with("prove the server is who it claims to be")
    );
}

#[test]
fn missing_cors_fails_a_browser_for_sure() {
    let apollo = Apollo {
        cors: false,
        ..Apollo::default()
    }
    .start();
    let ui = ui(&graphql(&apollo));
    let run = probe(None, Some(&ui.url), &[]);
    assert_eq!(run.status("api.reachable"), "pass");
    // A browser refuses an API whose preflight does not admit the UI's origin: the UI cannot work.
    assert_eq!(run.status("ui.server-url"), "fail");
    let m = run.message("ui.server-url");
    assert!(m.contains("a browser on http://127.0.0.1:"), "{m}");
    assert!(m.contains("is refused"), "{m}");
    assert!(m.contains("the CORS preflight (OPTIONS) answer has no Access-Control-Allow-Origin"));
    assert!(
        run.fix("ui.server-url")
            .contains("drops or overrides the CORS headers")
    );
    assert_eq!(run.code, 1);
}

#[test]
fn a_preflight_that_gets_no_answer_is_only_a_warning() {
    // Apollo answers GraphQL, but OPTIONS requests hang here (a proxy on this machine's path that
    // holds them): the browser, on another network, may still get through.
    let apollo = Server::start(|hit| {
        if hit.method == "OPTIONS" {
            Reply::Hang
        } else {
            Apollo::default().answer(hit)
        }
    });
    let ui = ui(&graphql(&apollo));
    let run = probe(None, Some(&ui.url), &[]);
    assert_eq!(run.status("ui.server-url"), "warn", "{}", run.text);
    let m = run.message("ui.server-url");
    assert!(
        m.contains("may be refused") && m.contains("uncertain"),
        "{m}"
    );
    assert_eq!(run.code, 0, "a warning alone passes");
    let strict = check(&["--timeout", "2s", "--ui-url", &ui.url, "--strict"], &[]);
    assert_eq!(strict.code, 1, "--strict fails on warnings");
}

#[test]
fn the_ui_talks_to_another_api() {
    let checked = Apollo::default().start();
    let other = Apollo::default().start();
    let ui = ui(&graphql(&other));
    let run = probe(Some(&graphql(&checked)), Some(&ui.url), &[]);
    assert_eq!(run.status("ui.server-url"), "warn");
    assert!(run.message("ui.server-url").contains(&format!(
        "the UI talks to {}/graphql, a different API from the one checked here ({}/graphql, from --api-url)",
        other.url, checked.url
    )));
    let fix = run.fix("ui.server-url");
    assert!(
        fix.contains(&format!("--api-url {}/graphql", other.url)),
        "{fix}"
    );

    // `/` and `/graphql` on the same origin are the same Apollo: no warning.
    let run2 = run_both(&format!("{}/", other.url), &ui.url);
    let run = run2;
    assert_eq!(
        run.status("ui.server-url"),
        "pass",
        "{}",
        run.message("ui.server-url")
    );
}

fn run_both(api: &str, ui_url: &str) -> support::Run {
    probe(Some(api), Some(ui_url), &[])
}

#[test]
fn the_ui_alone_brings_its_api() {
    let apollo = Apollo::default().start();
    let ui = ui(&graphql(&apollo));
    let run = probe(None, Some(&ui.url), &[]);
    assert_eq!(run.json["targets"][0]["kind"], "api");
    assert_eq!(
        run.json["targets"][0]["source"],
        "the UI's /settings.json server_url"
    );
    assert_eq!(run.status("api.reachable"), "pass");
    assert_eq!(
        evidence(&run, "api.reachable", "url"),
        &json!(graphql(&apollo))
    );
    assert_eq!(run.status("tenant.exists"), "pass");
    // settings.json was wanted by three checks (and to find the API) in each of the six runs `check`
    // made (one per output format, and the recorded run its bundle re-analyses), and fetched once
    // per run.
    let gets = ui
        .hits()
        .iter()
        .filter(|h| h.method == "GET" && h.path == "/settings.json")
        .count();
    assert_eq!(gets, 6);
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

fn prefect_home(config: &str, backend: Option<&str>) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".prefect");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), config).unwrap();
    if let Some(b) = backend {
        std::fs::write(dir.join("backend.toml"), format!("backend = \"{b}\"\n")).unwrap();
    }
    home
}

fn run_home(home: &std::path::Path, args: &[&str]) -> Value {
    let out = doctor()
        .env("HOME", home)
        .args(["check", "-o", "json", "--timeout", "2s"])
        .args(args)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn local_prefect_cli_config() {
    let apollo = Apollo::default().start();
    let config = format!(
        "[server]\n  host = \"http://127.0.0.1\"\n  port = {}\n",
        apollo.port()
    );

    // Server backend, endpoint reaches Apollo: pass, and the API target comes from the config.
    let home = prefect_home(&config, Some("server"));
    let json = run_home(home.path(), &[]);
    let r = result_of(&json, "prefect.cli-config");
    assert_eq!(r["status"], "pass", "{r}");
    assert_eq!(
        r["evidence"]["cli_api_source"],
        "~/.prefect/config.toml [server] host, ~/.prefect/config.toml [server] port"
    );
    assert_eq!(result_of(&json, "api.reachable")["status"], "pass");
    assert_eq!(
        json["targets"].as_array().unwrap()[1]["source"],
        "the prefect CLI's API, from ~/.prefect/config.toml [server] host, ~/.prefect/config.toml [server] port"
    );

    // `prefect backend server` never run: the CLI talks to Prefect Cloud.
    let home = prefect_home(&config, None);
    let r = result_of(&run_home(home.path(), &[]), "prefect.cli-config");
    assert_eq!(r["status"], "warn", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("Prefect Cloud (https://api.prefect.io), not your server: the backend is \"cloud\" (the default)"),
        "{r}"
    );
    assert!(
        r["fix"]
            .as_str()
            .unwrap()
            .contains("prefect backend server")
    );

    // The endpoint does not answer: the README's "Connecting to your Server".
    let home = prefect_home(
        "[server]\n  host = \"http://127.0.0.1\"\n  port = 9\n",
        Some("server"),
    );
    let r = result_of(
        &run_home(home.path(), &["--api-url", &graphql(&apollo)]),
        "prefect.cli-config",
    );
    assert_eq!(r["status"], "warn", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("which does not answer")
    );
    let fix = r["fix"].as_str().unwrap();
    assert!(fix.contains("host = \"http://<EXTERNAL-IP>\""), "{fix}");
    assert!(
        fix.contains("(it now says\nhttp://127.0.0.1:9)") || fix.contains("http://127.0.0.1:9")
    );

    // Environment variables win over the files, as in prefect.
    let out = doctor()
        .env("HOME", home.path())
        .env("PREFECT__SERVER__ENDPOINT", graphql(&apollo))
        .args(["check", "-o", "json", "--only", "prefect.*"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        result_of(&json, "prefect.cli-config")["status"],
        "pass",
        "{json}"
    );

    // A file Prefect cannot load breaks every `prefect` command: this check's finding and a notice
    // at the report's top, whatever `--only` selected; the run goes on.
    let home = prefect_home("[server\nhost = ", Some("server"));
    let json = run_home(home.path(), &["--api-url", &graphql(&apollo)]);
    let r = result_of(&json, "prefect.cli-config");
    assert_eq!(r["status"], "warn", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("every `prefect` command on this machine fails: Prefect 1.4.1 cannot load its configuration: ~/.prefect/config.toml is not valid TOML"),
        "{r}"
    );
    assert!(r["fix"].as_str().unwrap().contains("prefect config"));
    assert_eq!(result_of(&json, "api.reachable")["status"], "pass");
    let only_api = run_home(
        home.path(),
        &["--api-url", &graphql(&apollo), "--only", "api.reachable"],
    );
    assert!(
        only_api["notices"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("config.toml is not valid TOML")),
        "{only_api}"
    );

    // Only Prefect 2 lives in ~/.prefect: not judged as a Prefect 1 CLI.
    let p2 = tempfile::tempdir().unwrap();
    std::fs::create_dir(p2.path().join(".prefect")).unwrap();
    std::fs::write(
        p2.path().join(".prefect/profiles.toml"),
        "active = \"default\"\n[profiles.default]\n",
    )
    .unwrap();
    let r = result_of(
        &run_home(p2.path(), &["--api-url", &graphql(&apollo)]),
        "prefect.cli-config",
    );
    assert_eq!(r["status"], "skip", "{r}");
    assert!(r["message"].as_str().unwrap().contains("Prefect 2"));

    // No ~/.prefect, no variable, no `prefect` on PATH: no CLI to judge, and the skip says where it would
    // point if installed.
    let empty = tempfile::tempdir().unwrap();
    let r = result_of(
        &run_home(empty.path(), &["--api-url", &graphql(&apollo)]),
        "prefect.cli-config",
    );
    assert_eq!(r["status"], "skip", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("no prefect CLI on this machine"),
        "{r}"
    );
    assert!(
        r["message"].as_str().unwrap().contains("Prefect Cloud"),
        "{r}"
    );

    // The same with a `prefect` on PATH: Prefect 1.x then talks to Prefect Cloud, and the report says so.
    let bin = empty.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::write(bin.join("prefect"), "#!/bin/sh\nexit 0\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("prefect"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    let out = doctor()
        .env("HOME", empty.path())
        .env("PATH", format!("/nonexistent:{}", bin.display()))
        .args([
            "check",
            "-o",
            "json",
            "--timeout",
            "2s",
            "--api-url",
            &graphql(&apollo),
        ])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = result_of(&json, "prefect.cli-config");
    assert_eq!(r["status"], "warn", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("Prefect Cloud (https://api.prefect.io)")
    );
    assert!(
        r["fix"]
            .as_str()
            .unwrap()
            .contains("prefect backend server")
    );
}
