//! What the API, UI, tenant and CLI checks share: the queries, the UI's settings, the API's URL, and
//! the `hello` round trip. Every request goes through the run's [`HttpProbe`](crate::probes::http),
//! so one that several checks make is sent once.

use std::{fmt, net::IpAddr, sync::Arc};

use serde_json::{Map, Value, json};
use url::Url;

use super::{Cx, Outcome};
use crate::{
    probes::{
        graphql::{self, GraphqlProblem},
        http::{HttpFailure, Request, Response},
    },
    targets::ApiUrl,
};

pub const HELLO: &str = "query { hello }";
pub const VERSION: &str = "query { api { version core_version } }";

/// What `query { api { version core_version } }` said; a field the answer lacks is `None`.
pub struct ServerVersions {
    pub version: Option<String>,
    pub core_version: Option<String>,
}

/// The run's API and its versions: `None` when no API is given; `(url, None)` when it gave no
/// answer. The request is the one `api.version` sends, so it is sent once per run.
pub async fn server_versions(cx: &Cx) -> Option<(Url, Option<ServerVersions>)> {
    let (url, _) = api_url(cx).await.ok()?;
    let (_, data) = graphql(cx, &Request::graphql(&url, VERSION)).await;
    let versions = data.ok().map(|d| {
        let field = |k: &str| {
            d.get("api")
                .and_then(|a| a.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        ServerVersions {
            version: field("version"),
            core_version: field("core_version"),
        }
    });
    Some((url, versions))
}
pub const TENANT: &str = "query { tenant(limit: 1) { id slug } }";

/// What the UI's `/settings.json` held.
#[derive(Debug, Clone)]
pub struct UiSettings {
    /// The URL of `settings.json`.
    pub url: Url,
    pub response: Arc<Response>,
    pub server_url: String,
    pub base_url: Option<String>,
}

impl UiSettings {
    /// The API URL the browser calls: `server_url` resolved against the page it ends up on (after any
    /// redirect of the UI itself), so a relative `server_url` means what it means to the browser.
    pub fn browser_api_url(&self) -> Result<Url, String> {
        match self.response.url.join(&self.server_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(u),
            Ok(u) => Err(format!(
                "server_url {:?} is not an http(s) URL ({u})",
                self.server_url
            )),
            Err(e) => Err(format!(
                "server_url {:?} is not a URL: {e}",
                self.server_url
            )),
        }
    }
}

/// The UI's root with a trailing slash, so that `settings.json` resolves beneath a path prefix.
pub fn ui_root(ui: &Url) -> Url {
    let mut u = ui.clone();
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u.set_query(None);
    u.set_fragment(None);
    u
}

/// The origin a browser sends for pages of `url` (`scheme://host[:port]`).
pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Two API URLs name the same Apollo: same origin and a path of `/` or `/graphql` (Apollo serves both).
pub fn same_api(a: &Url, b: &Url) -> bool {
    let path = |u: &Url| {
        let p = u.path().trim_end_matches('/');
        if p.is_empty() || p == "/graphql" {
            "/graphql".to_string()
        } else {
            p.to_string()
        }
    };
    a.origin() == b.origin() && path(a) == path(b)
}

/// Loopback as a browser sees it: `localhost` (and `*.localhost`) or a loopback address.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Reads and validates the UI's `/settings.json`; the `Err` is the outcome to report.
pub async fn ui_settings(cx: &Cx) -> Result<UiSettings, Outcome> {
    let ui = cx.ui.or_skip(
        "UI",
        "no UI given: pass --ui-url (or set [server.ui] endpoint in ~/.prefect/config.toml)",
    )?;
    let url = ui_root(&ui.url)
        .join("settings.json")
        .map_err(|e| Outcome::error(format!("cannot build the settings.json URL: {e}")))?;
    let ev = |o: Outcome| {
        o.with("url", url.as_str())
            .var("settings_url", url.as_str())
    };
    let resp = match cx.http.fetch(&Request::get(&url)).await {
        Ok(r) => r,
        Err(f) => {
            return Err(ev(Outcome::finding(format!(
                "cannot reach the UI at {url}: {f}"
            )))
            .with("failure", f.kind())
            .fix("ui_unreachable"));
        }
    };
    let ev = |o: Outcome| ev(o).with("response", resp.evidence());
    let redirected = resp.redirect_note();
    if resp.status == 404 {
        return Err(ev(Outcome::finding(format!(
            "{url} answered {}{redirected}: the server at this address does not serve the Prefect UI's \
             settings.json (wrong URL or port, or a proxy routes /settings.json elsewhere)",
            resp.status_text()
        ))));
    }
    if !(200..300).contains(&resp.status) {
        return Err(ev(Outcome::finding(format!(
            "{url} answered {}{redirected}: {:?}",
            resp.status_text(),
            resp.snippet()
        ))));
    }
    if resp.is_html() {
        let title = resp
            .html_title()
            .map(|t| format!(" (title {t:?})"))
            .unwrap_or_default();
        return Err(ev(Outcome::finding(format!(
            "{url} answered with an HTML page{title}{redirected} instead of JSON: the server answers every \
             path with a page (a single-page-app fallback such as `try_files $uri /index.html`), so \
             settings.json is missing there; this is not the Prefect UI's own nginx, or the UI is \
             served under another path"
        )))
        .fix("not_the_ui"));
    }
    let value: Value = match serde_json::from_slice(&resp.body) {
        Ok(v) => v,
        Err(e) => {
            return Err(ev(Outcome::finding(format!(
                "{url} is not valid JSON ({e}): {:?}",
                resp.snippet()
            ))));
        }
    };
    let Some(obj) = value.as_object() else {
        return Err(ev(Outcome::finding(format!(
            "{url} holds JSON but not an object: {:?}",
            resp.snippet()
        ))));
    };
    let server_url = match obj.get("server_url") {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(other) => {
            return Err(ev(Outcome::finding(format!(
                "{url} has a server_url that is not a string: {other}"
            ))));
        }
        None => {
            return Err(ev(Outcome::finding(format!(
                "{url} has no server_url key (keys: {})",
                crate::untrusted::list(&obj.keys().collect::<Vec<_>>(), 20)
            ))));
        }
    };
    if server_url.contains("PREFECT_SERVER__APOLLO_URL") {
        return Err(ev(Outcome::finding(format!(
            "{url} still holds the placeholder {server_url:?}: the UI container's start script did not \
             write the API URL (PREFECT_SERVER__APOLLO_URL was not set when it started)"
        )))
        .with("server_url", server_url)
        .fix("placeholder"));
    }
    if server_url.is_empty() {
        return Err(
            ev(Outcome::finding(format!("{url} has an empty server_url"))).fix("placeholder"),
        );
    }
    Ok(UiSettings {
        url: url.clone(),
        server_url,
        base_url: obj
            .get("base_url")
            .and_then(Value::as_str)
            .map(str::to_string),
        response: resp,
    })
}

/// The API's URL and where it came from; the `Err` is the outcome to report.
pub async fn api_url(cx: &Cx) -> Result<(Url, String), Outcome> {
    let api = cx.api.or_skip(
        "API",
        "no API given: pass --api-url (or --ui-url, whose settings.json names the API)",
    )?;
    match &api.url {
        ApiUrl::Fixed(u) => Ok((u.clone(), api.source.clone())),
        ApiUrl::FromUi => {
            let s = ui_settings(cx).await.map_err(|o| {
                Outcome::skip(format!(
                    "the API is the one the UI names, and its settings.json could not be used: {}",
                    o.message
                ))
            })?;
            let url = s
                .browser_api_url()
                .map_err(|e| Outcome::skip(format!("the UI's {e}")))?;
            Ok((url, api.source.clone()))
        }
    }
}

/// Why a GraphQL request got no data.
#[derive(Debug, Clone)]
pub enum GraphqlFailure {
    Http(HttpFailure),
    Answer(GraphqlProblem),
}

impl GraphqlFailure {
    pub fn kind(&self) -> &'static str {
        match self {
            GraphqlFailure::Http(f) => f.kind(),
            GraphqlFailure::Answer(p) => p.kind(),
        }
    }
}

impl fmt::Display for GraphqlFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphqlFailure::Http(e) => e.fmt(f),
            GraphqlFailure::Answer(p) => p.fmt(f),
        }
    }
}

/// Sends `req` and reads its GraphQL `data`. The response comes back whenever there was one.
pub async fn graphql(
    cx: &Cx,
    req: &Request,
) -> (
    Option<Arc<Response>>,
    Result<Map<String, Value>, GraphqlFailure>,
) {
    match cx.http.fetch(req).await {
        Err(f) => (None, Err(GraphqlFailure::Http(f))),
        Ok(resp) => {
            let data = graphql::data(&resp).map_err(GraphqlFailure::Answer);
            (Some(resp), data)
        }
    }
}

/// `query { hello }` against `url`: the answer (Apollo's is "👋") or why there is none.
pub async fn hello(
    cx: &Cx,
    req: &Request,
) -> (Option<Arc<Response>>, Result<String, GraphqlFailure>) {
    let (resp, data) = graphql(cx, req).await;
    let answer = data.and_then(|d| match d.get("hello") {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(GraphqlFailure::Answer(GraphqlProblem::NoData {
            status: resp.as_ref().map(|r| r.status_text()).unwrap_or_default(),
            snippet: json!(d).to_string(),
        })),
    });
    (resp, answer)
}
