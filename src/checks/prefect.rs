//! The local prefect CLI (`prefect.*`): is it set up to talk to this server? The README's
//! "Connecting to your Server".

use std::sync::Arc;

use super::{
    Cx, Outcome,
    web::{self, HELLO, same_api},
};
use crate::{
    probes::http::Request,
    targets::{ApiUrl, parse_http_url},
};

pub async fn prefect_cli_config(cx: Arc<Cx>) -> Outcome {
    let p = &cx.prefect;
    if !p.present() {
        return Outcome::skip(format!(
            "no local prefect configuration ({} does not exist)",
            p.home_dir.display()
        ));
    }
    if p.only_prefect2() {
        return Outcome::skip(format!(
            "{} holds a Prefect 2 profiles.toml and no Prefect 1 configuration (config.toml, backend.toml); \
             Prefect 2's CLI does not talk to Prefect Server 1",
            p.home_dir.display()
        ));
    }
    if let Some(problem) = p.problems.first() {
        return Outcome::error(format!(
            "cannot read the prefect configuration: {}",
            p.problems.join("; ")
        ))
        .with("problem", problem.clone());
    }
    let backend = p.backend();
    let endpoint = p.server_endpoint();
    let base = |o: Outcome| {
        o.with("backend", backend.value.clone())
            .with("backend_source", backend.source.clone())
            .with("endpoint", endpoint.value.clone())
            .with("endpoint_source", endpoint.source.clone())
            .var("cli_endpoint", endpoint.value.clone())
    };
    if backend.value != "server" {
        return base(Outcome::finding(format!(
            "the prefect CLI uses the {:?} backend ({}), not your server: `prefect backend server` was not run",
            backend.value,
            if backend.is_default() {
                "the default".to_string()
            } else {
                format!("from {}", backend.source)
            }
        )))
        .fix("backend");
    }
    let url = match parse_http_url(&endpoint.value) {
        Ok(u) => u,
        Err(e) => {
            return base(Outcome::finding(format!(
                "the CLI's server endpoint (from {}) is unusable: {e}",
                endpoint.source
            )));
        }
    };
    let (resp, answer) = web::hello(&cx, &Request::graphql(&url, HELLO)).await;
    let from = if endpoint.is_default() {
        "the default".to_string()
    } else {
        endpoint.source.clone()
    };
    if let Err(f) = answer {
        let redirected = resp.map(|r| r.redirect_note()).unwrap_or_default();
        return base(Outcome::finding(format!(
            "the prefect CLI talks to {url} ({from}), which does not answer: {f}{redirected}"
        )))
        .with("failure", f.kind());
    }
    if let Some(api) = cx.api.get()
        && let ApiUrl::Fixed(checked) = &api.url
        && api.from_flag
        && !same_api(checked, &url)
    {
        return base(Outcome::warn(format!(
            "the prefect CLI talks to {url} ({from}), which answers, but it is not the API checked here ({checked})"
        )))
        .fix("other_api");
    }
    base(Outcome::pass(format!(
        "the prefect CLI uses the server backend and reaches Apollo at {url} ({from})"
    )))
}
