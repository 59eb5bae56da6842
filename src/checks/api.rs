//! API checks (`api.*`): Prefect's Apollo GraphQL server, as this machine reaches it.

use std::sync::Arc;

use serde_json::Value;

use super::{
    Cx, Outcome,
    web::{self, GraphqlFailure, HELLO, VERSION},
};
use crate::probes::{graphql::GraphqlProblem, http::Request};

pub async fn api_reachable(cx: Arc<Cx>) -> Outcome {
    let (url, source) = match web::api_url(&cx).await {
        Ok(v) => v,
        Err(o) => return o,
    };
    let (resp, answer) = web::hello(&cx, &Request::graphql(&url, HELLO)).await;
    let redirected = resp.as_ref().map(|r| r.redirect_note()).unwrap_or_default();
    let o = match answer {
        Ok(hello) => Outcome::pass(format!(
            "Apollo at {url} answered query {{ hello }} with {hello:?} in {} ms{redirected}",
            resp.as_ref().map(|r| r.elapsed.as_millis()).unwrap_or(0)
        ))
        .with("hello", hello),
        Err(GraphqlFailure::Answer(GraphqlProblem::NoData { .. })) => Outcome::finding(format!(
            "{url} answers GraphQL but has no `hello` field{redirected}: this is not Prefect's Apollo \
             (Hasura's own endpoint, or another GraphQL server?)"
        ))
        .with("failure", "no-hello")
        .fix("wrong_service"),
        Err(GraphqlFailure::Answer(p)) => {
            Outcome::finding(format!("the Prefect API at {url} {p}{redirected}"))
                .with("failure", p.kind())
                .fix("wrong_service")
        }
        Err(f) => Outcome::finding(format!("cannot reach the Prefect API at {url}: {f}"))
            .with("failure", f.kind()),
    };
    let o = o
        .with("url", url.as_str())
        .with("source", source)
        .var("api_url", url.as_str());
    match resp {
        Some(r) => o.with("response", r.evidence()),
        None => o,
    }
}

pub async fn api_version(cx: Arc<Cx>) -> Outcome {
    let (url, _) = match web::api_url(&cx).await {
        Ok(v) => v,
        Err(o) => return o,
    };
    let (_, data) = web::graphql(&cx, &Request::graphql(&url, VERSION)).await;
    let data = match data {
        Ok(d) => d,
        Err(f) => {
            return Outcome::error(format!(
                "could not read the versions (query {{ api {{ version core_version }} }}): {f}"
            ))
            .with("failure", f.kind());
        }
    };
    let field = |k: &str| {
        data.get("api")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match (field("version"), field("core_version")) {
        (Some(server), core) => Outcome::pass(format!(
            "Prefect Server API {server} (Prefect Core {})",
            core.as_deref().unwrap_or("unknown")
        ))
        .with("version", server)
        .with("core_version", core),
        (None, _) => Outcome::error(format!(
            "{url} answered without api.version: {}",
            Value::Object(data)
        )),
    }
}
