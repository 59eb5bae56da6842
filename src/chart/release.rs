//! Helm 3 releases, read the way Helm stores them: one Secret `sh.helm.release.v1.<name>.v<N>` per
//! revision (labels `owner=helm`, `name`, `status`, `version`; type `helm.sh/release.v1`), whose
//! `release` key holds base64 of gzipped JSON (old releases: base64 of plain JSON). The Secret API's
//! own base64 layer is already gone when k8s-openapi hands us the bytes.
//!
//! Nothing here trusts the input: a garbage secret, a gzip bomb or JSON of the wrong shape is a
//! [`DecodeError`], never a panic, and decompression stops at [`MAX_RELEASE_BYTES`].

use std::io::Read;

use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Helm's driver label and secret type.
pub const OWNER_LABEL: &str = "owner=helm";
pub const SECRET_TYPE: &str = "helm.sh/release.v1";
/// The chart this tool diagnoses.
pub const CHART_NAME: &str = "prefect-server";
/// A decoded release larger than this is refused (real ones are well under a few MiB: Kubernetes
/// holds a Secret of at most 1 MiB, and a chart's manifest compresses about tenfold).
pub const MAX_RELEASE_BYTES: u64 = 16 * 1024 * 1024;
/// The most JSON values (objects, arrays, scalars) a release may hold before it is parsed: memory is
/// bounded by what is built, not only by bytes (31 MiB of `[[],[],…]` would take gigabytes as
/// values). A real release holds a few thousand.
pub const MAX_RELEASE_NODES: usize = 250_000;

/// Counts the JSON values in `json` without building them (a lexical scan: each `{`, `[` and `,`
/// outside strings starts at most one value); `false` when there are more than `max`.
pub fn json_nodes_within(json: &[u8], max: usize) -> bool {
    let mut count = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' | b',' => {
                count += 1;
                if count > max {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// The parts of a Helm release this tool reads.
#[derive(Debug, Clone)]
pub struct Release {
    pub name: String,
    pub namespace: String,
    pub revision: u64,
    /// deployed, failed, pending-install, pending-upgrade, pending-rollback, superseded, uninstalling …
    pub status: String,
    pub description: String,
    pub chart_name: String,
    pub chart_version: String,
    pub app_version: String,
    /// The chart's own `values.yaml`.
    pub chart_values: Value,
    /// What the user set (`-f`/`--set`), Helm's `config`.
    pub user_values: Value,
    /// `user_values` coalesced over `chart_values`, as the templates saw them.
    pub values: Value,
    pub manifest: String,
}

#[derive(Deserialize)]
struct RawRelease {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    info: RawInfo,
    #[serde(default)]
    chart: RawChart,
    #[serde(default)]
    config: Value,
    #[serde(default)]
    manifest: String,
}

#[derive(Deserialize, Default)]
struct RawInfo {
    #[serde(default)]
    status: String,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize, Default)]
struct RawChart {
    #[serde(default)]
    metadata: RawMetadata,
    #[serde(default)]
    values: Value,
}

#[derive(Deserialize, Default)]
struct RawMetadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default, rename = "appVersion")]
    app_version: String,
}

/// Decodes the `release` key of a Helm release secret (the bytes after the Secret API's base64).
pub fn decode(data: &[u8]) -> Result<Release, DecodeError> {
    let text: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .map_err(|e| DecodeError(format!("the release is not base64 ({e})")))?;
    let json = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .take(MAX_RELEASE_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| DecodeError(format!("the release's gzip stream is broken ({e})")))?;
        if out.len() as u64 > MAX_RELEASE_BYTES {
            return Err(DecodeError(format!(
                "the release decompresses to more than {} MiB; refusing it",
                MAX_RELEASE_BYTES / (1024 * 1024)
            )));
        }
        out
    } else {
        raw
    };
    if !json_nodes_within(&json, MAX_RELEASE_NODES) {
        return Err(DecodeError(format!(
            "the release holds more than {MAX_RELEASE_NODES} JSON values; refusing it"
        )));
    }
    let raw: RawRelease = serde_json::from_slice(&json).map_err(|e| {
        DecodeError(format!(
            "the release is not Helm release JSON ({})",
            e.classify_name()
        ))
    })?;
    let chart_values = object_or_empty(raw.chart.values);
    let user_values = object_or_empty(raw.config);
    let values = coalesce(&chart_values, &user_values);
    register_secrets(&user_values);
    register_secrets(&chart_values);
    Ok(Release {
        name: raw.name,
        namespace: raw.namespace,
        revision: raw.version,
        status: raw.info.status,
        description: raw.info.description,
        chart_name: raw.chart.metadata.name,
        chart_version: raw.chart.metadata.version,
        app_version: raw.chart.metadata.app_version,
        chart_values,
        user_values,
        values,
        manifest: raw.manifest,
    })
}

trait ClassifyName {
    fn classify_name(&self) -> String;
}

impl ClassifyName for serde_json::Error {
    /// The error without quoting the input (a release carries the user's passwords).
    fn classify_name(&self) -> String {
        let what = match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "unexpected shape",
            serde_json::error::Category::Eof => "truncated JSON",
        };
        format!("{what} at line {} column {}", self.line(), self.column())
    }
}

fn object_or_empty(v: Value) -> Value {
    match v {
        Value::Object(_) => v,
        _ => Value::Object(Map::new()),
    }
}

/// Helm's coalescing of user values over chart defaults (what the templates see): maps merge key by
/// key, anything else replaces; a user `null` deletes the default, and stays a `null` where the
/// chart has no such key; the chart's own `null` defaults are dropped.
pub fn coalesce(defaults: &Value, user: &Value) -> Value {
    coalesce_into(without_nulls(defaults.clone()), user)
}

fn coalesce_into(defaults: Value, user: &Value) -> Value {
    match (defaults, user) {
        (Value::Object(mut out), Value::Object(u)) => {
            for (k, uv) in u {
                match (out.remove(k), uv) {
                    (Some(_), Value::Null) => {}
                    (Some(dv @ Value::Object(_)), Value::Object(_)) => {
                        out.insert(k.clone(), coalesce_into(dv, uv));
                    }
                    _ => {
                        out.insert(k.clone(), uv.clone());
                    }
                }
            }
            Value::Object(out)
        }
        (_, u) => u.clone(),
    }
}

/// Helm's merging of one values source over another (values files in order, a `--set-json`
/// object): maps merge key by key, anything else replaces, and a `null` is kept, to delete the
/// chart's default when the result is coalesced.
pub fn merge(base: Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(mut out), Value::Object(o)) => {
            for (k, ov) in o {
                let merged = match out.remove(k) {
                    Some(bv @ Value::Object(_)) if ov.is_object() => merge(bv, ov),
                    _ => ov.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (_, o) => o.clone(),
    }
}

/// `v` without the null values of its mappings, at every depth (lists keep theirs), walked
/// without recursion.
pub fn without_nulls(mut v: Value) -> Value {
    let mut stack: Vec<&mut Value> = vec![&mut v];
    while let Some(node) = stack.pop() {
        match node {
            Value::Object(m) => {
                m.retain(|_, x| !x.is_null());
                stack.extend(m.values_mut());
            }
            Value::Array(a) => stack.extend(a.iter_mut()),
            _ => {}
        }
    }
    v
}

/// Registers every string under a password- or token-like key for scrubbing: releases carry the
/// user's `--set postgresql.auth.password=…`.
pub fn register_secrets(v: &Value) {
    fn walk(v: &Value, secret_key: bool) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let k = k.to_ascii_lowercase();
                    walk(
                        v,
                        k.contains("password") || k.contains("token") || k.ends_with("secretkey"),
                    );
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, secret_key)),
            Value::String(s) if secret_key => crate::redact::register(s),
            _ => {}
        }
    }
    walk(v, false)
}

/// The documents of a rendered manifest, as JSON. Documents that are empty or not objects are
/// dropped; a manifest that does not parse gives an error naming the problem.
pub fn manifest_objects(manifest: &str) -> Result<Vec<Value>, DecodeError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(manifest)
        .map_err(|e| DecodeError(format!("the release manifest is not YAML: {e}")))?;
    Ok(docs.into_iter().filter(Value::is_object).collect())
}

/// The release revision a secret's name encodes (`sh.helm.release.v1.prefect.v3` → 3).
pub fn revision_of(secret_name: &str) -> Option<u64> {
    secret_name
        .rsplit_once(".v")
        .and_then(|(_, n)| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::facts::{lookup, lookup_str};
    use serde_json::json;

    /// Encodes a release the way Helm does (gzip, then base64).
    fn encode(release_json: &Value) -> Vec<u8> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        // Writing to a Vec cannot fail.
        let _ = gz.write_all(release_json.to_string().as_bytes());
        let bytes = gz.finish().unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into_bytes()
    }

    fn release_json() -> Value {
        json!({
            "name": "prefect", "namespace": "default", "version": 3,
            "info": {"status": "deployed", "description": "Upgrade complete"},
            "chart": {"metadata": {"name": "prefect-server", "version": "2022.12.22", "appVersion": "2022.12.22"},
                      "values": {"postgresql": {"auth": {"username": "prefect", "password": "prefect"}, "useSubChart": true},
                                 "jobs": {"createTenant": {"enabled": false}}}},
            "config": {"postgresql": {"auth": {"password": "canary-pw-1"}}, "jobs": null},
            "manifest": "---\nkind: Service\nmetadata:\n  name: a\n---\n# comment only\n"
        })
    }

    #[test]
    fn decodes_gzip_and_plain() {
        let r = decode(&encode(&release_json())).expect("gzip");
        assert_eq!(r.status, "deployed");
        assert_eq!(r.revision, 3);
        assert_eq!(r.chart_name, "prefect-server");
        assert_eq!(
            lookup_str(&r.values, "postgresql.auth.password"),
            Some("canary-pw-1")
        );
        assert_eq!(
            lookup_str(&r.values, "postgresql.auth.username"),
            Some("prefect")
        );
        assert!(lookup(&r.values, "jobs").is_none(), "user null deletes");
        assert_eq!(crate::redact::scrub("x canary-pw-1 y"), "x **** y");
        let plain = base64::engine::general_purpose::STANDARD.encode(release_json().to_string());
        assert_eq!(decode(plain.as_bytes()).expect("plain").name, "prefect");
        assert_eq!(manifest_objects(&r.manifest).expect("yaml").len(), 1);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b"not base64 at all!"[..],
            b"H4sIAAAA",
            b"e30=",
            b"",
            b"W10=",
        ] {
            let e = decode(bad);
            if let Ok(r) = &e {
                // `{}` is a (useless) release: it must decode to empties, not panic.
                assert_eq!(r.chart_name, "");
            }
        }
        let e = decode(b"bm90IGpzb24=").expect_err("not json");
        assert!(e.0.contains("not Helm release JSON"), "{e}");
    }

    #[test]
    fn gzip_bomb_is_refused() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b' '; 1024 * 1024];
        for _ in 0..40 {
            gz.write_all(&zeros).expect("write");
        }
        let b = base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gz"));
        let e = decode(b.as_bytes()).expect_err("bomb");
        assert!(e.0.contains("more than 16 MiB"), "{e}");
    }
}
