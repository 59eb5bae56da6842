//! UI checks (`ui.*`): the README's "The UI loads but cannot connect to the API", judged from where
//! the user's browser stands. The browser, not the UI server, calls the API named in `/settings.json`.

use std::sync::Arc;

use serde_json::{Value, json};
use url::Url;

use super::{
    Cx, Outcome,
    web::{self, HELLO, is_loopback, origin, same_api},
};
use crate::{
    probes::http::{Request, Response},
    targets::ApiUrl,
};

pub async fn ui_settings_json(cx: Arc<Cx>) -> Outcome {
    match web::ui_settings(&cx).await {
        Ok(s) => Outcome::pass(format!(
            "{} says server_url = {:?}{}{}",
            s.url,
            s.server_url,
            s.base_url
                .as_deref()
                .map(|b| format!(", base_url = {b:?}"))
                .unwrap_or_default(),
            s.response.redirect_note()
        ))
        .with("url", s.url.as_str())
        .with("server_url", s.server_url.clone())
        .with("base_url", s.base_url.clone())
        .with("response", s.response.evidence()),
        Err(o) => o,
    }
}

/// Why the browser cannot resolve `url`'s host, and the release and namespace in a chart service name.
pub(super) fn cluster_internal(url: &Url) -> Option<(String, Option<String>, Option<String>)> {
    let Some(url::Host::Domain(host)) = url.host() else {
        return None;
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    let chart_name = labels
        .first()
        .and_then(|l| l.strip_suffix("-apollo"))
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    let namespace = labels
        .get(1)
        .filter(|_| labels.len() >= 2)
        .map(|s| s.to_string());
    let why = if host.ends_with(".cluster.local") || labels.contains(&"svc") {
        format!("{host:?} is a Kubernetes service DNS name, which resolves only inside the cluster")
    } else if chart_name.is_some() && labels.len() <= 2 {
        format!(
            "{host:?} is the chart's Apollo service name (<release>-apollo[.<namespace>]), which \
             resolves only inside the cluster"
        )
    } else {
        return None;
    };
    Some((why, chart_name, namespace.filter(|_| labels.len() >= 2)))
}

/// Does a CORS header value allow `origin`?
fn allows_origin(value: Option<&str>, origin: &str) -> bool {
    value.is_some_and(|v| v.trim() == "*" || v.trim().eq_ignore_ascii_case(origin))
}

/// What a browser would object to in the preflight and the actual response, if anything, and
/// whether the browser's refusal is certain. A preflight that got an answer is judged as the browser
/// judges it (certain); one that got none from here (a time-out, a reset) may still reach the
/// server from the browser's network, so that outcome is uncertain.
fn cors_problem(
    preflight: &Result<Arc<Response>, crate::probes::http::HttpFailure>,
    actual: &Response,
    page_origin: &str,
) -> Option<(String, &'static str, bool)> {
    let redirected = matches!(preflight, Ok(p) if !p.redirects.is_empty());
    cors_refusal(preflight, actual, page_origin).map(|m| {
        (
            m,
            if redirected { "redirect" } else { "cors" },
            preflight.is_ok(),
        )
    })
}

fn cors_refusal(
    preflight: &Result<Arc<Response>, crate::probes::http::HttpFailure>,
    actual: &Response,
    page_origin: &str,
) -> Option<String> {
    match preflight {
        Err(f) => {
            return Some(format!(
                "the CORS preflight (OPTIONS) got no answer from here ({f}), so whether the browser is \
                 refused is uncertain"
            ));
        }
        Ok(p) => {
            // A preflight is fetched with redirects refused: any redirect fails it.
            if !p.redirects.is_empty() {
                return Some(format!(
                    "the CORS preflight (OPTIONS) was redirected{}, and a browser does not follow \
                     a redirect for a preflight",
                    p.redirect_note()
                        .trim_start_matches(" (redirected")
                        .trim_end_matches(')')
                ));
            }
            if !(200..300).contains(&p.status) {
                return Some(format!(
                    "the CORS preflight (OPTIONS) answered {}",
                    p.status_text()
                ));
            }
            let allow_origin = p.header("access-control-allow-origin");
            if !allows_origin(allow_origin, page_origin) {
                return Some(match allow_origin {
                    None => {
                        "the CORS preflight (OPTIONS) answer has no Access-Control-Allow-Origin"
                            .to_string()
                    }
                    Some(v) => format!(
                        "the CORS preflight allows origin {v:?}, not the UI's {page_origin:?}"
                    ),
                });
            }
            let headers = p
                .header("access-control-allow-headers")
                .unwrap_or_default()
                .to_ascii_lowercase();
            if !headers
                .split(',')
                .any(|h| matches!(h.trim(), "content-type" | "*"))
            {
                return Some(format!(
                    "the CORS preflight does not allow the Content-Type header (Access-Control-Allow-Headers: {headers:?})"
                ));
            }
        }
    }
    let allow_origin = actual.header("access-control-allow-origin");
    if !allows_origin(allow_origin, page_origin) {
        return Some(match allow_origin {
            None => "the GraphQL answer has no Access-Control-Allow-Origin header".to_string(),
            Some(v) => {
                format!("the GraphQL answer allows origin {v:?}, not the UI's {page_origin:?}")
            }
        });
    }
    None
}

pub async fn ui_server_url(cx: Arc<Cx>) -> Outcome {
    let settings = match web::ui_settings(&cx).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    // The page the browser ends up on (after any redirect of the UI itself).
    let page = settings.response.url.clone();
    let page_origin = origin(&page);
    let server = match settings.browser_api_url() {
        Ok(u) => u,
        Err(e) => return Outcome::finding(e),
    };
    let checked_api = match cx.api.get() {
        // A port-forward's local address cannot be compared with the one the browser uses.
        Some(a) if a.forwarded => None,
        Some(a) => match &a.url {
            ApiUrl::Fixed(u) => Some((u.clone(), a.source.clone())),
            ApiUrl::FromUi => None,
        },
        None => None,
    };
    let suggestion = match &checked_api {
        Some((u, _)) if !same_api(u, &server) && !is_loopback(u) => u.to_string(),
        _ if page.scheme() == "https" && server.scheme() == "http" => {
            let mut s = server.clone();
            let _ = s.set_scheme("https");
            let _ = s.set_port(None);
            s.to_string()
        }
        _ => "http://<EXTERNAL-IP>:4200/graphql".to_string(),
    };
    let base = |o: Outcome| {
        o.with("server_url", settings.server_url.clone())
            .with("resolved", server.as_str())
            .with("ui_origin", page_origin.clone())
            .var("server_url", server.as_str())
            .var("ui_origin", page_origin.clone())
            .var("apollo_url", suggestion.clone())
    };
    let shown = if settings.server_url == server.as_str() {
        format!("{server}")
    } else {
        format!("{:?} (= {server})", settings.server_url)
    };

    // What fails before any connection is made.
    if !server.username().is_empty() || server.password().is_some() {
        // The Fetch standard: a request cannot be constructed from a URL with credentials.
        let mut bare = server.clone();
        let _ = bare.set_username("");
        let _ = bare.set_password(None);
        return base(Outcome::finding(format!(
            "the UI tells the browser to call {bare} with a user name or password in the URL: \
             fetch() refuses to make a request to a URL that includes credentials, so the UI \
             cannot call it at all"
        )))
        .var("server_url", bare.as_str())
        .fix("credentials");
    }
    if let Some((why, release, namespace)) = cluster_internal(&server) {
        let mut o = base(Outcome::finding(format!(
            "the UI tells the browser to call {shown}, but {why}: the user's browser cannot reach it"
        )))
        .fix("cluster_dns");
        if let Some(r) = release {
            o = o.var("release", r);
        }
        if let Some(n) = namespace {
            o = o.var("namespace", n);
        }
        return o;
    }
    if is_loopback(&server) && !is_loopback(&page) {
        return base(Outcome::finding(format!(
            "the UI is served from {page_origin} but tells the browser to call {shown}: localhost is \
             the user's own machine, not the server"
        )))
        .fix("localhost");
    }
    if page.scheme() == "https" && server.scheme() == "http" && !is_loopback(&server) {
        return base(Outcome::finding(format!(
            "the UI is served over https ({page_origin}) but tells the browser to call {shown} over \
             plain http: browsers block this mixed content"
        )))
        .fix("mixed_content");
    }

    // Now as the browser does it: a GraphQL POST from the UI's origin.
    let req = Request::graphql(&server, HELLO).header("origin", page_origin.clone());
    let (resp, answer) = web::hello(&cx, &req).await;
    let resp = match (resp, answer) {
        (Some(r), Ok(_)) => r,
        (resp, Err(f)) => {
            let redirected = resp.as_ref().map(|r| r.redirect_note()).unwrap_or_default();
            // 301/302/303 turn the browser's POST into a GET without its query.
            let to_get = resp
                .as_ref()
                .is_some_and(|r| r.redirects.iter().any(|h| matches!(h.status, 301..=303)));
            let o = base(Outcome::finding(format!(
                "the UI tells the browser to call {shown}, which does not answer from this machine: {f}{redirected}{}",
                if to_get {
                    "; that redirect turns the browser's POST into a GET without its query, which \
                     Apollo does not answer"
                } else {
                    ""
                }
            )))
            .with("failure", f.kind());
            let o = if to_get { o.fix("redirect") } else { o };
            return match resp {
                Some(r) => o.with("response", r.evidence()),
                None => o,
            };
        }
        (None, Ok(_)) => return base(Outcome::error("no response")),
    };
    // (message, fix variant, certain: a browser is refused for sure)
    let mut problems: Vec<(String, &'static str, bool)> = Vec::new();
    let same_origin = server.origin() == page.origin();
    let mut cors = json!({ "same_origin": same_origin });
    if !same_origin {
        let preflight = cx
            .http
            .fetch(&Request::preflight(&server, &page_origin))
            .await;
        if let Ok(p) = &preflight {
            cors["preflight_status"] = json!(p.status);
            cors["preflight_allow_origin"] = json!(p.header("access-control-allow-origin"));
            cors["preflight_allow_headers"] = json!(p.header("access-control-allow-headers"));
        }
        cors["allow_origin"] = json!(resp.header("access-control-allow-origin"));
        if let Some((problem, variant, certain)) = cors_problem(&preflight, &resp, &page_origin) {
            let likely = if variant == "redirect" {
                "something in front of Apollo redirects it"
            } else {
                "a proxy or ingress in front of Apollo is likely dropping its CORS headers"
            };
            problems.push((
                format!(
                    "{server} answers, but a browser on {page_origin} {}: {problem} ({likely})",
                    if certain {
                        "is refused"
                    } else {
                        "may be refused"
                    }
                ),
                variant,
                certain,
            ));
        }
    }
    if let Some((api, source)) = &checked_api
        && !same_api(api, &server)
    {
        problems.push((
            format!(
                "the UI talks to {server}, a different API from the one checked here ({api}, from {source})"
            ),
            "other_api",
            false,
        ));
    }
    // A certain refusal fails (the UI cannot work); what is only possibly wrong warns.
    problems.sort_by_key(|(_, _, certain)| !certain);
    let o = match problems.first() {
        None => Outcome::pass(format!(
            "the browser's API URL {shown} answers from this machine{}{}",
            if same_origin {
                " (same origin as the UI)".to_string()
            } else {
                format!(" and allows the UI's origin {page_origin}")
            },
            resp.redirect_note()
        )),
        Some((_, variant, certain)) => {
            let message = problems
                .iter()
                .map(|(m, _, _)| m.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            if *certain {
                Outcome::finding(message)
            } else {
                Outcome::warn(message)
            }
            .fix(variant)
        }
    };
    base(o)
        .with("cors", cors)
        .with("response", resp.evidence())
        .with(
            "relative",
            Value::Bool(!settings.server_url.contains("://")),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internal(u: &str) -> Option<(String, Option<String>, Option<String>)> {
        cluster_internal(&Url::parse(u).unwrap())
    }

    #[test]
    fn cluster_names_are_recognised() {
        let (_, r, n) = internal("http://prefect-apollo.default:4200/graphql").unwrap();
        assert_eq!(
            (r.as_deref(), n.as_deref()),
            (Some("prefect"), Some("default"))
        );
        let (_, r, n) =
            internal("http://my-apollo.prefect.svc.cluster.local:4200/graphql").unwrap();
        assert_eq!((r.as_deref(), n.as_deref()), (Some("my"), Some("prefect")));
        assert!(internal("http://prefect-apollo:4200/graphql").is_some());
        assert!(internal("http://api.prefect.svc:4200/").is_some());
        assert!(internal("https://prefect.example.com/graphql").is_none());
        assert!(internal("http://10.0.0.5:4200/graphql").is_none());
        assert!(internal("http://localhost:4200/graphql").is_none());
    }

    #[test]
    fn origins() {
        assert!(allows_origin(Some("*"), "http://a"));
        assert!(allows_origin(Some("http://a"), "http://a"));
        assert!(!allows_origin(Some("http://b"), "http://a"));
        assert!(!allows_origin(None, "http://a"));
    }
}
