//! Facts of the chart's values: lookups by dotted path, the two generations of database keys and the
//! wiring each gives the services (user, database, secret and key), ingress TLS.

use serde_json::Value;

/// The value at a dotted path (`postgresql.auth.username`).
pub fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(v, |v, k| v.as_object().and_then(|m| m.get(k)))
}

pub fn lookup_str<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    lookup(v, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Helm's truthiness for a value used in `{{ if }}`.
pub fn lookup_bool(v: &Value, path: &str) -> Option<bool> {
    lookup(v, path).map(|v| match v {
        Value::Bool(b) => *b,
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    })
}

/// Which of the chart's two value layouts a values tree uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// Charts before 2022.09: `postgresql.postgresqlPassword`, `postgresql.existingSecret`, Bitnami
    /// PostgreSQL 10 (secret key `postgresql-password`).
    Legacy,
    /// Charts from 2022.09: `postgresql.auth.*`, Bitnami PostgreSQL 11 (keys `postgres-password`,
    /// `password`).
    Auth,
}

impl Generation {
    /// Judged by the chart's own defaults, which name one layout or the other.
    pub fn of_chart(chart_values: &Value) -> Generation {
        if lookup(chart_values, "postgresql.auth").is_some() {
            Generation::Auth
        } else {
            Generation::Legacy
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Generation::Legacy => "before 2022.09 (postgresql.postgresqlPassword)",
            Generation::Auth => "2022.09 and later (postgresql.auth.*)",
        }
    }
    /// The values key naming the password secret.
    pub fn existing_secret_path(self) -> &'static str {
        match self {
            Generation::Auth => "postgresql.auth.existingSecret",
            Generation::Legacy => "postgresql.existingSecret",
        }
    }
    /// The secret key the services read the password from.
    pub fn password_key(self) -> &'static str {
        match self {
            Generation::Auth => "postgres-password",
            Generation::Legacy => "postgresql-password",
        }
    }
}

/// What a database password secret's keys say, as the chart's services use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKeys {
    Fine,
    /// Only the pre-2022.07 key `postgresql-password` where `postgres-password` is read.
    Renamed,
    Missing,
    /// The superuser's `postgres-password` is handed to a user whose own `password` differs.
    SuperuserPasswordDiffers,
}

/// Judges the secret's keys: `key` is the one the services read, as user `user`; `subchart`: the
/// Bitnami subchart made the user with key `password`.
pub fn judge_secret_keys(
    data: &std::collections::BTreeMap<String, Vec<u8>>,
    key: &str,
    user: &str,
    subchart: bool,
) -> SecretKeys {
    let Some(password) = data.get(key) else {
        return if key == "postgres-password" && data.contains_key("postgresql-password") {
            SecretKeys::Renamed
        } else {
            SecretKeys::Missing
        };
    };
    match data.get("password") {
        Some(user_password)
            if subchart
                && user != "postgres"
                && key == "postgres-password"
                && user_password != password =>
        {
            SecretKeys::SuperuserPasswordDiffers
        }
        _ => SecretKeys::Fine,
    }
}

/// The database settings the chart renders, read from the values of either generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbValues {
    pub generation: Generation,
    pub use_subchart: bool,
    pub username: String,
    pub database: String,
    pub existing_secret: Option<String>,
    pub external_hostname: Option<String>,
    pub port: u16,
}

impl DbValues {
    pub fn read(values: &Value, generation: Generation) -> DbValues {
        let (user, db, port) = match generation {
            Generation::Auth => (
                "postgresql.auth.username",
                "postgresql.auth.database",
                "postgresql.primary.service.ports.postgresql",
            ),
            Generation::Legacy => (
                "postgresql.postgresqlUsername",
                "postgresql.postgresqlDatabase",
                "postgresql.servicePort",
            ),
        };
        let secret = generation.existing_secret_path();
        let port = lookup(values, port)
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(5432);
        DbValues {
            generation,
            use_subchart: lookup_bool(values, "postgresql.useSubChart").unwrap_or(true),
            username: lookup_str(values, user).unwrap_or("prefect").to_string(),
            database: lookup_str(values, db).unwrap_or("prefect").to_string(),
            existing_secret: lookup_str(values, secret).map(str::to_string),
            external_hostname: lookup_str(values, "postgresql.externalHostname")
                .map(str::to_string),
            port,
        }
    }

    /// The secret the chart's services read the password from.
    pub fn secret_name(&self, release: &str) -> String {
        self.existing_secret
            .clone()
            .unwrap_or_else(|| format!("{release}-postgresql"))
    }
}

/// An ingress's TLS hosts, and its TLS secrets with the values path naming each.
pub fn tls_hosts(v: &Value, component: &str) -> (Vec<String>, Vec<(String, String)>) {
    let mut hosts = Vec::new();
    let mut secrets = Vec::new();
    for (i, t) in lookup(v, &format!("{component}.ingress.tls"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(s) = t["secretName"].as_str() {
            secrets.push((
                s.to_string(),
                format!("{component}.ingress.tls[{i}].secretName"),
            ));
        }
        for h in t["hosts"].as_array().into_iter().flatten() {
            if let Some(h) = h.as_str() {
                hosts.push(h.to_string());
            }
        }
    }
    (hosts, secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::release::{decode, json_nodes_within, revision_of};
    use base64::Engine as _;
    use serde_json::json;

    #[test]
    fn secret_keys_as_the_services_use_them() {
        let data = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let both = data(&[("postgres-password", "a"), ("password", "b")]);
        assert_eq!(
            judge_secret_keys(&both, "postgres-password", "prefect", true),
            SecretKeys::SuperuserPasswordDiffers
        );
        assert_eq!(
            judge_secret_keys(&both, "postgres-password", "postgres", true),
            SecretKeys::Fine
        );
        assert_eq!(
            judge_secret_keys(&both, "postgres-password", "prefect", false),
            SecretKeys::Fine
        );
        let old = data(&[("postgresql-password", "a")]);
        assert_eq!(
            judge_secret_keys(&old, "postgres-password", "prefect", true),
            SecretKeys::Renamed
        );
        assert_eq!(
            judge_secret_keys(&old, "postgresql-password", "prefect", true),
            SecretKeys::Fine
        );
        assert_eq!(
            judge_secret_keys(&data(&[]), "postgres-password", "prefect", true),
            SecretKeys::Missing
        );
    }

    #[test]
    fn db_values_of_both_generations() {
        let legacy = json!({"postgresql": {"postgresqlUsername": "pf", "postgresqlDatabase": "pfdb",
            "existingSecret": "mine", "servicePort": 6543, "useSubChart": false, "externalHostname": "db.example"}});
        let d = DbValues::read(&legacy, Generation::of_chart(&legacy));
        assert_eq!(d.generation, Generation::Legacy);
        assert_eq!(
            (d.username.as_str(), d.database.as_str(), d.port),
            ("pf", "pfdb", 6543)
        );
        assert_eq!(d.secret_name("prefect"), "mine");
        assert!(!d.use_subchart);
        let auth = json!({"postgresql": {"auth": {"username": "prefect", "existingSecret": null}, "useSubChart": true}});
        let d = DbValues::read(&auth, Generation::of_chart(&auth));
        assert_eq!(d.generation, Generation::Auth);
        assert_eq!(d.secret_name("rel"), "rel-postgresql");
        assert_eq!(revision_of("sh.helm.release.v1.prefect.v12"), Some(12));
    }

    #[test]
    fn a_small_gzip_of_many_values_is_refused_before_parsing() {
        use std::io::Write as _;
        // About 9 MiB of `[],` (3 million values) gzips to a few KiB.
        let mut json = b"{\"name\":\"x\",\"config\":[".to_vec();
        for _ in 0..3_000_000 {
            json.extend_from_slice(b"[],");
        }
        json.extend_from_slice(b"[]]}");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&json).unwrap();
        let packed = gz.finish().unwrap();
        assert!(packed.len() < 200_000, "{}", packed.len());
        let b64 = base64::engine::general_purpose::STANDARD.encode(packed);
        let e = decode(b64.as_bytes()).unwrap_err();
        assert!(e.0.contains("more than 250000 JSON values"), "{e}");
        assert!(json_nodes_within(br#"{"a":"[[[,,,]]]","b":[1,2]}"#, 4));
        assert!(!json_nodes_within(br#"[1,2,3,4]"#, 3));
    }
}
