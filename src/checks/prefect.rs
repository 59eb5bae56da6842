//! The local prefect CLI (`prefect.*`): is it set up to talk to this server? The README's
//! "Connecting to your Server".

use std::sync::Arc;

use super::{
    Cx, Outcome,
    web::{self, HELLO, same_api},
};
use crate::{
    probes::{http::Request, prefect_config::Call},
    targets::ApiUrl,
};

pub async fn prefect_cli_config(cx: Arc<Cx>) -> Outcome {
    let p = match cx
        .prefect
        .or_skip("prefect CLI configuration", "no prefect configuration")
    {
        Ok(p) => p,
        Err(o) => return o,
    };
    if p.only_prefect2() {
        return Outcome::skip(format!(
            "{} holds a Prefect 2 profiles.toml and no Prefect 1 configuration (config.toml, backend.toml); \
             Prefect 2's CLI does not talk to Prefect Server 1",
            p.home_dir.display()
        ));
    }
    if !p.present() {
        return Outcome::skip(format!(
            "no prefect CLI on this machine (no `prefect` on PATH, no {}, no PREFECT__ variable); \
             installed as it stands, it would talk to Prefect Cloud, Prefect 1.x's default backend",
            p.home_dir.display()
        ));
    }
    let backend = p.backend();
    let api = p.cli_api();
    let from = |source: &str| {
        if source == "default" {
            "the default".to_string()
        } else {
            format!("from {source}")
        }
    };
    let mut base = Outcome::pass("")
        .with("backend", backend.value.clone())
        .with("backend_source", backend.source.clone())
        .with("cli_api", api.text.clone())
        .with("cli_api_source", api.source.clone())
        .var("cli_endpoint", api.text.clone());
    if !p.problems.is_empty() {
        base = base.with("config_problems", p.problems.clone());
    }
    let base = move |o: Outcome| Outcome {
        verdict: o.verdict,
        message: o.message,
        fix_variant: o.fix_variant,
        ..base.clone()
    };
    if let Some(why) = &p.broken {
        return base(Outcome::finding(format!(
            "every `prefect` command on this machine fails: Prefect 1.4.1 cannot load its configuration: {why}"
        )))
        .with("config_error", why.clone())
        .fix("unloadable");
    }
    if !p.cli_targets_server() {
        return base(Outcome::finding(format!(
            "the prefect CLI talks to Prefect Cloud ({}), not your server: the backend is {:?} ({}); \
             `prefect backend server` was not run",
            api.text,
            backend.value,
            from(&backend.source),
        )))
        .fix("backend");
    }
    let (url, guessed) = match &api.call {
        Call::Sends(u) => (u.clone(), None),
        Call::Fails {
            guess, exception, ..
        } => {
            let error = api.call.error_text().unwrap_or_default();
            let Some(g) = guess else {
                return base(Outcome::finding(format!(
                    "every `prefect` command that calls the API fails: the CLI's API is {:?} ({}), \
                     and the client refuses it ({error})",
                    api.text,
                    from(&api.source)
                )))
                .with("client_error", *exception)
                .fix("scheme");
            };
            (g.clone(), Some(error))
        }
    };
    let (resp, answer) = web::hello(&cx, &Request::graphql(&url, HELLO)).await;
    if let Some(error) = guessed {
        let answered = match &answer {
            Ok(_) => format!("{url} (http:// guessed) does answer"),
            Err(f) => format!("{url} (http:// guessed) does not answer either: {f}"),
        };
        return base(Outcome::finding(format!(
            "every `prefect` command that calls the API fails: the CLI's API is {:?} ({}), which has \
             no http:// or https://, and the client refuses it ({error}); {answered}",
            api.text,
            from(&api.source)
        )))
        .with("client_error", error)
        .var("guessed_url", url.as_str().trim_end_matches('/'))
        .fix("scheme");
    }
    let from = from(&api.source);
    if let Err(f) = answer {
        let redirected = resp.map(|r| r.redirect_note()).unwrap_or_default();
        return base(Outcome::finding(format!(
            "the prefect CLI talks to {url} ({from}), which does not answer: {f}{redirected}"
        )))
        .with("failure", f.kind());
    }
    if let Some(checked) = cx.api.get()
        && !checked.forwarded
        && let ApiUrl::Fixed(checked) = &checked.url
        && !same_api(checked, &url)
    {
        return base(Outcome::warn(format!(
            "the prefect CLI talks to {url} ({from}), which answers, but it is not the API checked here ({checked})"
        )))
        .fix("other_api");
    }
    base(Outcome::pass(format!(
        "the prefect CLI is set up for a server and reaches Apollo at {url} ({from})"
    )))
}
