//! What a fleet run reports: each release (its context, namespace and name) with its report, and the
//! contexts or releases that could not be read. The renderers take it; the fleet session makes it.

use crate::report::Report;

/// One release of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    /// The kubeconfig context (`None`: the current one).
    pub context: Option<String>,
    pub namespace: String,
    pub release: String,
}

impl Member {
    /// `context/namespace/release` (the context left out when it is the current one).
    pub fn heading(&self) -> String {
        match &self.context {
            Some(c) => format!("{c}/{}/{}", self.namespace, self.release),
            None => format!("{}/{}", self.namespace, self.release),
        }
    }
}

/// A context whose releases could not be listed, or a release of it that could not be read.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unlisted {
    pub context: Option<String>,
    pub error: String,
}

/// Every release diagnosed, in the order listed.
pub struct Fleet {
    pub releases: Vec<(Member, Report)>,
    pub unlisted: Vec<Unlisted>,
    /// The checks' catalog (the user checks too).
    pub catalog: &'static crate::catalog::Catalog,
}

impl Fleet {
    /// Every report sanitized, as renderers take them, and so are the names from the cluster and
    /// what could not be listed or read: secrets masked, then escaped and capped.
    pub fn sanitized(self) -> Fleet {
        use crate::untrusted::{MAX_EVIDENCE_STRING, MAX_MESSAGE};
        let line = |s: &str, max: usize| crate::untrusted::line(&crate::redact::scrub(s), max);
        let name = |s: &Option<String>| s.as_deref().map(|c| line(c, MAX_EVIDENCE_STRING));
        Fleet {
            releases: self
                .releases
                .into_iter()
                .map(|(m, r)| {
                    let m = Member {
                        context: name(&m.context),
                        namespace: line(&m.namespace, MAX_EVIDENCE_STRING),
                        release: line(&m.release, MAX_EVIDENCE_STRING),
                    };
                    (m, r.sanitized())
                })
                .collect(),
            unlisted: self
                .unlisted
                .iter()
                .map(|u| Unlisted {
                    context: name(&u.context),
                    error: line(&u.error, MAX_MESSAGE),
                })
                .collect(),
            ..self
        }
    }
}

impl Fleet {
    /// The worst exit code of all releases; a context that could not be listed counts as 1.
    pub fn exit_code(&self) -> i32 {
        let worst = self
            .releases
            .iter()
            .map(|(_, r)| r.exit_code)
            .max()
            .unwrap_or(0);
        if self.unlisted.is_empty() {
            worst
        } else {
            worst.max(1)
        }
    }
}
