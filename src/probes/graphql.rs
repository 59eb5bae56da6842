//! Reading a GraphQL answer the way Prefect's clients do, and saying precisely what is wrong with one
//! that is not a GraphQL answer.

use std::fmt;

use serde_json::{Map, Value};

use super::http::Response;

/// Why a response is not the GraphQL data asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphqlProblem {
    /// An HTML page: an ingress default backend, a proxy error page, the UI's `index.html` …
    Html {
        status: String,
        title: Option<String>,
    },
    /// JSON, but an array or a scalar where GraphQL answers with an object.
    NotAnObject { status: String, snippet: String },
    /// Neither HTML nor JSON.
    NotJson {
        status: String,
        content_type: Option<String>,
        snippet: String,
    },
    /// JSON, but not a GraphQL answer, with a non-2xx status.
    Status { status: String, snippet: String },
    /// A GraphQL answer carrying errors.
    Errors {
        status: String,
        first: String,
        code: Option<String>,
        count: usize,
    },
    /// JSON without `data` or `errors`.
    NoData { status: String, snippet: String },
}

impl GraphqlProblem {
    pub fn kind(&self) -> &'static str {
        match self {
            GraphqlProblem::Html { .. } => "html",
            GraphqlProblem::NotJson { .. } => "not-json",
            GraphqlProblem::NotAnObject { .. } => "not-graphql",
            GraphqlProblem::Status { .. } => "http-status",
            GraphqlProblem::Errors { .. } => "graphql-errors",
            GraphqlProblem::NoData { .. } => "no-data",
        }
    }

    /// The first GraphQL error message, when the server answered with errors.
    pub fn first_error(&self) -> Option<&str> {
        match self {
            GraphqlProblem::Errors { first, .. } => Some(first),
            _ => None,
        }
    }
}

impl fmt::Display for GraphqlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphqlProblem::Html { status, title } => {
                write!(f, "answered with an HTML page ({status}")?;
                if let Some(t) = title {
                    write!(f, ", title {t:?}")?;
                }
                f.write_str(
                    ") instead of GraphQL JSON: an ingress or load-balancer default page, a proxy's \
                     error page or the UI is answering at this URL, not Apollo",
                )
            }
            GraphqlProblem::NotAnObject { status, snippet } => write!(
                f,
                "answered {status} with JSON that is not a GraphQL answer (not an object): {snippet:?}"
            ),
            GraphqlProblem::NotJson {
                status,
                content_type,
                snippet,
            } => write!(
                f,
                "answered {status} with {} that is not JSON: {snippet:?}",
                content_type
                    .as_deref()
                    .unwrap_or("a body without content type")
            ),
            GraphqlProblem::Status { status, snippet } => {
                write!(f, "answered {status} without a GraphQL answer: {snippet:?}")
            }
            GraphqlProblem::Errors {
                status,
                first,
                code,
                count,
            } => {
                write!(f, "answered with GraphQL errors ({status}): {first:?}")?;
                if let Some(c) = code {
                    write!(f, " [{c}]")?;
                }
                if *count > 1 {
                    write!(f, " (+{} more)", count - 1)?;
                }
                Ok(())
            }
            GraphqlProblem::NoData { status, snippet } => {
                write!(
                    f,
                    "answered {status} with JSON that is not a GraphQL answer: {snippet:?}"
                )
            }
        }
    }
}

/// The `data` object of a GraphQL answer, or what is wrong with the answer.
pub fn data(resp: &Response) -> Result<Map<String, Value>, GraphqlProblem> {
    let status = resp.status_text();
    let parsed: Option<Value> = serde_json::from_slice(&resp.body).ok();
    // JSON, but not an object (an array, a string): a JSON answer that is not GraphQL's.
    if parsed.as_ref().is_some_and(|v| !v.is_object()) && (200..300).contains(&resp.status) {
        return Err(GraphqlProblem::NotAnObject {
            status,
            snippet: resp.snippet(),
        });
    }
    let Some(Value::Object(mut obj)) = parsed else {
        if resp.is_html() {
            return Err(GraphqlProblem::Html {
                status,
                title: resp.html_title(),
            });
        }
        if !(200..300).contains(&resp.status) {
            return Err(GraphqlProblem::Status {
                status,
                snippet: resp.snippet(),
            });
        }
        return Err(GraphqlProblem::NotJson {
            status,
            content_type: resp.content_type().map(str::to_string),
            snippet: resp.snippet(),
        });
    };
    if let Some(Value::Array(errors)) = obj.get("errors")
        && !errors.is_empty()
    {
        let first = &errors[0];
        let message = first
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| first.to_string());
        let code = first
            .pointer("/extensions/code")
            .and_then(Value::as_str)
            .map(str::to_string);
        return Err(GraphqlProblem::Errors {
            status,
            first: message,
            code,
            count: errors.len(),
        });
    }
    match obj.remove("data") {
        Some(Value::Object(d)) if (200..300).contains(&resp.status) => Ok(d),
        _ if !(200..300).contains(&resp.status) => Err(GraphqlProblem::Status {
            status,
            snippet: resp.snippet(),
        }),
        _ => Err(GraphqlProblem::NoData {
            status,
            snippet: resp.snippet(),
        }),
    }
}
