//! What can go wrong talking to the Kubernetes API, said so that the user knows what to change:
//! a refused read names who was refused, the verb and resource, and the role of `deploy/` that
//! grants it; a refused identity names the context and user whose credentials were turned away.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum KubeError {
    /// The configuration could not be loaded (no kubeconfig, unknown context, bad file).
    #[error("cannot load the Kubernetes configuration: {0}")]
    Config(String),
    #[error(
        "forbidden: {} may not {verb} {resource}{} (RBAC); {}, or skip the check",
        who.as_deref().map(|w| format!("user {w}")).unwrap_or_else(|| "this user".to_string()),
        in_ns(namespace.as_deref()),
        granted_by(resource, namespace.as_deref())
    )]
    Forbidden {
        verb: String,
        resource: String,
        namespace: Option<String>,
        /// The identity the API server refused, as it names it (`system:serviceaccount:ns:name`).
        #[serde(default)]
        who: Option<String>,
    },
    /// 401: the API server did not accept the credentials at all.
    #[error(
        "the Kubernetes API at {server} did not accept the credentials of {} (context {context}): \
         401 Unauthorized. The token or client certificate is wrong or has expired: renew it (log in \
         to the cluster again, or ask for a new token) and try `kubectl --context {context} auth whoami`",
        user.as_deref().map(|u| format!("user {u}")).unwrap_or_else(|| "the in-cluster service account".to_string())
    )]
    Unauthorized {
        server: String,
        context: String,
        user: Option<String>,
    },
    #[error("cannot reach the Kubernetes API at {server}: {detail}")]
    Unreachable { server: String, detail: String },
    #[error("the Kubernetes API at {server} did not answer within {}", crate::untrusted::duration(*after))]
    Timeout { server: String, after: Duration },
    #[error("the Kubernetes API refused to {verb} {resource}: {code} {message}")]
    Api {
        verb: String,
        resource: String,
        code: u16,
        message: String,
    },
    /// The pod a port-forward was asked for is not there: the API server answered 404 (deleted, or
    /// replaced by its controller under another name).
    #[error(
        "pod {namespace}/{pod} is gone (the API server answered the port-forward 404 Not Found: the \
         pod was deleted, or its controller replaced it)"
    )]
    Gone { namespace: String, pod: String },
    #[error("{0}")]
    Other(String),
}

fn in_ns(ns: Option<&str>) -> String {
    ns.map(|n| format!(" in namespace {n}"))
        .unwrap_or_else(|| " cluster-wide".to_string())
}

/// Which of the shipped roles grants a refused read: the Role of `deploy/rbac.yaml` in the
/// release's namespace, its ClusterRole for the cluster-scoped reads, the fleet's ClusterRole for
/// reads across every namespace (`-A`).
fn granted_by(resource: &str, ns: Option<&str>) -> String {
    let cluster_scoped = matches!(
        resource,
        "clusterroles" | "clusterrolebindings" | "namespaces" | "nodes"
    );
    match ns {
        Some(ns) => format!(
            "the Role prefect-doctor of deploy/rbac.yaml grants it (applied with namespace: {ns})"
        ),
        None if cluster_scoped => {
            "the ClusterRole prefect-doctor of deploy/rbac.yaml grants it".to_string()
        }
        None => {
            "the ClusterRole prefect-doctor-fleet of deploy/rbac-fleet.yaml grants it in every \
                 namespace"
                .to_string()
        }
    }
}

/// The user a 403's message names: `User "NAME" cannot …` (the API server's RBAC wording),
/// escaped and capped; `None` when the message does not say.
pub fn refused_user(message: &str) -> Option<String> {
    let rest = message.split_once("User \"")?.1;
    let name = rest.split_once('"')?.0;
    (!name.is_empty()).then(|| crate::untrusted::line(name, 200))
}

impl KubeError {
    /// Whether the API server itself is out of reach (as opposed to refusing one request).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            KubeError::Unreachable { .. } | KubeError::Timeout { .. }
        )
    }
    pub fn kind(&self) -> &'static str {
        match self {
            KubeError::Config(_) => "config",
            KubeError::Forbidden { .. } => "forbidden",
            KubeError::Unauthorized { .. } => "unauthorized",
            KubeError::Unreachable { .. } => "unreachable",
            KubeError::Timeout { .. } => "timeout",
            KubeError::Api { .. } => "api",
            KubeError::Gone { .. } => "gone",
            KubeError::Other(_) => "other",
        }
    }
}

/// A TLS failure among an error's causes, said as one; a certificate the kubeconfig's CA did not
/// sign, or one for another name, with what that usually means.
pub(super) fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    use rustls::{CertificateError, Error};
    let t = super::http_failure::causes(e)
        .into_iter()
        .find_map(|c| c.downcast_ref::<Error>())?;
    let hint = match t {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            " (the kubeconfig's certificate-authority did not sign the API server's certificate: \
             another cluster behind this address, or a CA that changed since the kubeconfig was \
             written)"
        }
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => " (the API server's certificate does not name the kubeconfig's server address)",
        _ => "",
    };
    Some(format!("TLS failed: {t}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refused_user_is_read_from_the_api_servers_words() {
        assert_eq!(
            refused_user(
                "secrets is forbidden: User \"system:serviceaccount:team:doctor\" cannot list \
                 resource \"secrets\" in API group \"\" in the namespace \"team\""
            )
            .as_deref(),
            Some("system:serviceaccount:team:doctor")
        );
        assert_eq!(refused_user("forbidden"), None);
        assert_eq!(refused_user("User \"\" cannot"), None);
        assert_eq!(
            refused_user("User \"a\u{1b}[31mb\" cannot").as_deref(),
            Some("a\\x1b[31mb")
        );
    }
}
