//! A real browser as the judge of `ui.server-url`. For each case, the in-test UI (a page that does
//! what the Prefect UI does on load: GET /settings.json, then POST a GraphQL query to its
//! `server_url` with `content-type: application/json`) and an in-test Apollo are served on
//! loopback under test host names; headless Chromium (Debian's `chromium`) loads the UI and the page
//! says whether the call worked; `prefect-doctor check --only 'ui.*'` looks at the same pair
//! (`--resolve` for the same names). The browser's success must be the doctor's `pass` (or a `warn`
//! that says why it cannot be sure), its failure the doctor's `fail`; where they may rightly differ
//! (the browser here runs on the servers' machine, so `localhost` reaches them, which it does not
//! for users elsewhere), the case says so and asserts the doctor's reasoned verdict.
//!
//! `.ci/run` installs Chromium; without it the test says so and passes only outside CI.

use crate::support;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::json;
use support::http::{Hit, Reply, Server, tls_server_pki};

const UI_HOST: &str = "ui.test";
const API_HOST: &str = "api.test";
const OTHER_HOST: &str = "other.test";

/// The page: what the Prefect UI does on load, its outcome written on the body.
const PAGE: &str = r#"<!doctype html><html><head><title>ui</title></head><body><script>
(async () => {
  let out;
  try {
    const s = await (await fetch('settings.json')).json();
    const r = await fetch(s.server_url, {method: 'POST', headers: {'content-type': 'application/json'},
                                         body: JSON.stringify({query: 'query { hello }'})});
    const j = await r.json();
    out = (j && j.data && j.data.hello) ? 'ok' : 'bad ' + JSON.stringify(j);
  } catch (e) { out = 'fail ' + e; }
  document.body.setAttribute('data-outcome', out);
})();
</script></body></html>"#;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|b| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// What the browser made of the UI at `url`: `ok`, or why not.
fn browser_says(bin: &str, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let rules = format!(
        "MAP {UI_HOST} 127.0.0.1, MAP {API_HOST} 127.0.0.1, MAP {OTHER_HOST} 127.0.0.1, \
         MAP * ~NOTFOUND, EXCLUDE localhost"
    );
    let mut child = std::process::Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--ignore-certificate-errors",
            &format!("--user-data-dir={}", profile.path().display()),
            &format!("--host-resolver-rules={rules}"),
            "--virtual-time-budget=8000",
            "--dump-dom",
            url,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium starts");
    // Bounded: a browser that hangs is killed.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return "browser timed out".to_string();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    dom.split("data-outcome=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .map(|s| s.replace("&quot;", "\""))
        .unwrap_or_else(|| "no outcome".to_string())
}

/// How the API answers.
#[derive(Clone)]
struct Api {
    /// Access-Control-Allow-Origin on the preflight and the answer (`None`: left out).
    allow_origin: Option<String>,
    allow_headers: &'static str,
    /// Answer every request to the API path with this redirect, to `location`.
    redirect: Option<(u16, String)>,
    /// The path Apollo answers on.
    path: &'static str,
    delay: Duration,
    html: bool,
}

impl Default for Api {
    fn default() -> Api {
        Api {
            allow_origin: Some("*".into()),
            allow_headers: "content-type",
            redirect: None,
            path: "/graphql",
            delay: Duration::ZERO,
            html: false,
        }
    }
}

fn apollo(api: Api) -> impl Fn(&Hit) -> Reply + Send + Sync + 'static {
    move |hit: &Hit| {
        std::thread::sleep(api.delay);
        if let Some((status, to)) = &api.redirect
            && hit.path != "/moved"
        {
            // `{port}`: this server's own, from the Host header.
            let port = hit
                .header("host")
                .and_then(|h| h.rsplit(':').next())
                .unwrap_or("80");
            let to = to.replace("{port}", port);
            return Reply::new(*status, "text/html", "<html>moved</html>").header("location", &to);
        }
        let path = if hit.path == "/moved" {
            api.path
        } else {
            hit.path.as_str()
        };
        let cors = |r: Reply| match &api.allow_origin {
            Some(o) => r.header("access-control-allow-origin", o),
            None => r,
        };
        if path != api.path {
            return Reply::new(404, "text/html", "<html>Cannot POST</html>");
        }
        if hit.method == "GET" && hit.query().is_none() {
            // Apollo Server 2 on a GET without a query.
            return cors(Reply::new(400, "text/html", "GET query missing."));
        }
        if hit.method == "OPTIONS" {
            return cors(
                Reply::new(204, "text/plain", "")
                    .header(
                        "access-control-allow-methods",
                        "GET,HEAD,PUT,PATCH,POST,DELETE",
                    )
                    .header("access-control-allow-headers", api.allow_headers),
            );
        }
        if api.html {
            return cors(Reply::new(
                200,
                "text/html",
                "<html><title>login</title></html>",
            ));
        }
        cors(Reply::json(200, &json!({"data": {"hello": "👋"}})))
    }
}

/// One case: the UI's `server_url` (with `{api}` for the API server's base URL, `{ui}` for the
/// UI's own) and how the API answers; whether the UI and API are served over https.
struct Case {
    name: &'static str,
    server_url: &'static str,
    api: Api,
    ui_https: bool,
    api_https: bool,
    /// The UI loaded at `localhost` rather than its host name.
    ui_on_localhost: bool,
    /// Where the browser here (on the servers' machine) and a user's browser rightly differ: the
    /// doctor's verdict, and why.
    reasoned: Option<(&'static str, &'static str)>,
}

impl Default for Case {
    fn default() -> Case {
        Case {
            name: "",
            server_url: "{api}/graphql",
            api: Api::default(),
            ui_https: false,
            api_https: false,
            ui_on_localhost: false,
            reasoned: None,
        }
    }
}

fn run_case(bin: &str, c: &Case, ca_file: &std::path::Path) -> (String, String, String) {
    let (tls, api_ca) = tls_server_pki(API_HOST, "browser-test API CA");
    let api = Server::start_with_tls(apollo(c.api.clone()), c.api_https.then_some(tls));
    let api_base = format!(
        "{}://{API_HOST}:{}",
        if c.api_https { "https" } else { "http" },
        api.port()
    );
    let settings: Arc<Mutex<String>> = Arc::default();
    let (tls, ui_ca) = tls_server_pki(UI_HOST, "browser-test UI CA");
    std::fs::write(ca_file, format!("{api_ca}\n{ui_ca}")).unwrap();
    let page_settings = settings.clone();
    // The UI's nginx; `/graphql` on it is Apollo behind the same host (the same-origin layout).
    let same_host_apollo = apollo(Api::default());
    let ui = Server::start_with_tls(
        move |hit: &Hit| match hit.path.as_str() {
            "/settings.json" => Reply::new(
                200,
                "application/json",
                page_settings.lock().unwrap().clone(),
            ),
            "/graphql" => same_host_apollo(hit),
            // An ingress that moved the API on the UI's own host.
            "/old-307" | "/old-308" | "/old-301" | "/old-302" => Reply::new(
                hit.path[5..].parse().unwrap_or(308),
                "text/html",
                "<html>moved</html>",
            )
            .header("location", "/graphql"),
            _ => Reply::new(200, "text/html; charset=utf-8", PAGE),
        },
        c.ui_https.then_some(tls),
    );
    let ui_host = if c.ui_on_localhost {
        "localhost"
    } else {
        UI_HOST
    };
    let ui_url = format!(
        "{}://{ui_host}:{}/",
        if c.ui_https { "https" } else { "http" },
        ui.port()
    );
    let server_url = c
        .server_url
        .replace("{api}", &api_base)
        .replace("{api_port}", &api.port().to_string())
        .replace("{ui}", ui_url.trim_end_matches('/'));
    *settings.lock().unwrap() = json!({"server_url": server_url, "base_url": "/"}).to_string();
    let browser = browser_says(bin, &ui_url);

    let mut args = vec![
        "check".to_string(),
        "-o".into(),
        "json".into(),
        "--only".into(),
        "ui.*".into(),
        "--timeout".into(),
        "5s".into(),
        "--ui-url".into(),
        ui_url.clone(),
    ];
    for (host, port) in [
        (UI_HOST, ui.port()),
        (API_HOST, api.port()),
        (OTHER_HOST, api.port()),
    ] {
        args.push("--resolve".into());
        args.push(format!("{host}:{port}:127.0.0.1"));
    }
    let out = support::doctor()
        .env("SSL_CERT_FILE", ca_file)
        .args(&args)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{}: {e}: {}", c.name, String::from_utf8_lossy(&out.stderr)));
    let r = support::result_in(&report, "ui.server-url");
    (
        browser,
        r["status"].as_str().unwrap_or("").to_string(),
        r["message"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn the_browser_and_the_doctor_agree_on_ui_server_url() {
    let Some(bin) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            ".ci/run installs chromium: the browser oracle must run in CI"
        );
        eprintln!("chromium is not installed: the browser oracle did not run");
        return;
    };
    // Both test servers' certificates are for their names; the doctor trusts their CAs through
    // SSL_CERT_FILE (written per case), Chromium through --ignore-certificate-errors.
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("cas.pem");
    let redirect = |status: u16, to: &str| Api {
        redirect: Some((status, to.to_string())),
        ..Api::default()
    };
    let cases = vec![
        Case {
            name: "cors allowed",
            ..Case::default()
        },
        Case {
            name: "cors refused",
            api: Api {
                allow_origin: None,
                ..Api::default()
            },
            ..Case::default()
        },
        Case {
            name: "cors for another origin",
            api: Api {
                allow_origin: Some("http://elsewhere.test".into()),
                ..Api::default()
            },
            ..Case::default()
        },
        Case {
            name: "content-type not allowed",
            api: Api {
                allow_headers: "x-requested-with",
                ..Api::default()
            },
            ..Case::default()
        },
        Case {
            name: "apollo at /",
            server_url: "{api}/",
            api: Api {
                path: "/",
                ..Api::default()
            },
            ..Case::default()
        },
        Case {
            name: "wrong path",
            server_url: "{api}/api",
            ..Case::default()
        },
        Case {
            name: "cluster dns",
            server_url: "http://prefect-apollo.prefect.svc.cluster.local:4200/graphql",
            ..Case::default()
        },
        Case {
            name: "localhost, ui on localhost",
            server_url: "http://localhost:{api_port}/graphql",
            ui_on_localhost: true,
            ..Case::default()
        },
        Case {
            name: "localhost, ui on a real host",
            server_url: "http://localhost:{api_port}/graphql",
            reasoned: Some(("fail", "localhost is the user's own machine")),
            ..Case::default()
        },
        Case {
            name: "mixed content, real host",
            ui_https: true,
            ..Case::default()
        },
        Case {
            name: "mixed content, localhost",
            server_url: "http://localhost:{api_port}/graphql",
            ui_https: true,
            reasoned: Some(("fail", "localhost is the user's own machine")),
            ..Case::default()
        },
        Case {
            name: "https both",
            ui_https: true,
            api_https: true,
            ..Case::default()
        },
        Case {
            name: "redirect 301",
            api: redirect(301, "/moved"),
            ..Case::default()
        },
        Case {
            name: "redirect 302",
            api: redirect(302, "/moved"),
            ..Case::default()
        },
        Case {
            name: "redirect 307",
            api: redirect(307, "/moved"),
            ..Case::default()
        },
        Case {
            name: "redirect 308",
            api: redirect(308, "/moved"),
            ..Case::default()
        },
        Case {
            name: "redirect to another host",
            api: redirect(308, "http://other.test:{port}/moved"),
            ..Case::default()
        },
        Case {
            name: "credentials in the url",
            server_url: "http://user:pw@api.test:{api_port}/graphql",
            ..Case::default()
        },
        Case {
            name: "slow api",
            api: Api {
                delay: Duration::from_millis(1500),
                ..Api::default()
            },
            ..Case::default()
        },
        Case {
            name: "html answer",
            api: Api {
                html: true,
                ..Api::default()
            },
            ..Case::default()
        },
        Case {
            name: "same origin",
            server_url: "{ui}/graphql",
            ..Case::default()
        },
        Case {
            name: "same origin, 307",
            server_url: "{ui}/old-307",
            ..Case::default()
        },
        Case {
            name: "same origin, 308",
            server_url: "{ui}/old-308",
            ..Case::default()
        },
        Case {
            name: "same origin, 301 (POST becomes GET)",
            server_url: "{ui}/old-301",
            ..Case::default()
        },
        Case {
            name: "same origin, 302 (POST becomes GET)",
            server_url: "{ui}/old-302",
            ..Case::default()
        },
        Case {
            name: "redirect to https",
            api: redirect(308, "https://api.test:{port}/graphql"),
            ..Case::default()
        },
    ];
    let mut disagreements = Vec::new();
    for c in cases {
        let (browser, status, message) = run_case(bin, &c, &ca_file);
        let browser_ok = browser == "ok";
        let expected = match c.reasoned {
            Some((verdict, _)) => verdict,
            None if browser_ok => "pass",
            None => "fail",
        };
        let agrees = status == expected || (expected == "pass" && status == "warn");
        eprintln!(
            "{:<32} browser: {:<40} doctor: {status:<5} {message}",
            c.name,
            browser.chars().take(40).collect::<String>()
        );
        if !agrees {
            disagreements.push(format!(
                "{}: the browser said {browser:?}, the doctor {status}: {message}",
                c.name
            ));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}
