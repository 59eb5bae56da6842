//! `tenant.exists`: the API's own `create_tenant` mutation, as `prefect server create-tenant` sends
//! it (never an INSERT: the graphql service fills in what a tenant needs).

use serde_json::{Value, json};

use super::{Conn, Planned, Step};
use crate::{checks::Cx, probes::http::Request};

/// The mutation Prefect 1.4.1's `Client.create_tenant` sends.
pub const CREATE_TENANT: &str =
    "mutation($input: create_tenant_input!) { create_tenant(input: $input) { id } }";

pub(super) async fn exists(cx: &Cx) -> Result<Planned, String> {
    let (url, _) = crate::checks::api_url(cx).await.map_err(|o| {
        format!(
            "a tenant is created through the API, and there is none to send it to: {}",
            o.message
        )
    })?;
    // The API must answer before anything is planned: ask it what `tenant.exists` asks.
    let (_, data) =
        crate::checks::graphql(cx, &Request::graphql(&url, crate::checks::TENANT)).await;
    match data {
        Ok(d) => {
            if let Some(Value::Array(list)) = d.get("tenant")
                && !list.is_empty()
            {
                return Err(format!(
                    "the API at {url} has a tenant now: nothing to change"
                ));
            }
        }
        Err(crate::checks::GraphqlFailure::Answer(p))
            if p.first_error()
                .is_some_and(|m| m.contains("has no tenants")) => {}
        Err(f) => {
            return Err(format!(
                "a tenant is created through the API, and the API at {url} gives no answer: {f}"
            ));
        }
    }
    Ok(Planned {
        conn: Conn::Api,
        why: format!("the API at {url}"),
        steps: vec![Step {
            statement: CREATE_TENANT.to_string(),
            variables: Some(json!({"input": {"name": "default", "slug": "default"}})),
            replaces: None,
            undo: None,
        }],
    })
}
