//! The UI's settings.json and the server_url the browser calls: DNS names, localhost, HTTPS and
//! mixed content, CORS, another API, the UI alone.

use super::*;

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
