use std::collections::BTreeMap;

use super::*;

fn env(home: &Path, vars: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    m.insert("HOME".into(), home.display().to_string());
    m
}

fn with_files(files: &[(&str, &str)], vars: &[(&str, &str)]) -> (tempfile::TempDir, PrefectConfig) {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".prefect");
    std::fs::create_dir(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let c = PrefectConfig::load(&env(home.path(), vars));
    (home, c)
}

#[test]
fn defaults_without_any_file() {
    let home = tempfile::tempdir().unwrap();
    let c = PrefectConfig::load(&env(home.path(), &[]));
    assert!(!c.present());
    assert_eq!(c.server_endpoint().value, "http://localhost:4200");
    assert!(c.server_endpoint().is_default());
    assert_eq!(c.ui_endpoint().value, "http://localhost:8080");
    assert_eq!(c.backend().value, "cloud");
    assert_eq!(c.cli_api().text, "https://api.prefect.io");
    assert!(!c.cli_targets_server());
    assert_eq!(
        c.database_url().value,
        "postgresql://prefect:test-password@localhost:5432/prefect_server"
    );
    assert!(
        c.broken.is_none() && c.problems.is_empty(),
        "{:?}",
        c.problems
    );
    assert_eq!(c.home_dir, home.path().join(".prefect"));
}

#[test]
fn user_file_then_backend_file_then_environment() {
    let (home, c) = with_files(
        &[
            (
                "config.toml",
                "backend = \"cloud\"\n[server]\n  host = \"http://10.0.0.7\"\n  port = 4200\n",
            ),
            ("backend.toml", "backend = \"server\"\n"),
        ],
        &[],
    );
    assert_eq!(c.server_endpoint().value, "http://10.0.0.7:4200");
    assert_eq!(
        c.server_endpoint().source,
        "~/.prefect/config.toml [server] host, ~/.prefect/config.toml [server] port"
    );
    assert_eq!(c.backend().value, "server");
    assert_eq!(c.backend().source, "~/.prefect/backend.toml backend");
    let api = c.cli_api();
    assert_eq!(
        api.call,
        Call::Sends(url::Url::parse("http://10.0.0.7:4200").unwrap())
    );
    assert_eq!(
        api.source,
        "~/.prefect/config.toml [server] host, ~/.prefect/config.toml [server] port"
    );

    let c = PrefectConfig::load(&env(
        home.path(),
        &[(
            "PREFECT__SERVER__ENDPOINT",
            "https://prefect.example.com/graphql",
        )],
    ));
    assert_eq!(
        c.server_endpoint().value,
        "https://prefect.example.com/graphql"
    );
    assert_eq!(c.server_endpoint().source, "PREFECT__SERVER__ENDPOINT");
}

#[test]
fn cloud_api_wins_over_the_server_endpoint() {
    let (_h, c) = with_files(
        &[(
            "config.toml",
            "backend = \"server\"\n[cloud]\napi = \"http://apollo:4200/graphql\"\n",
        )],
        &[],
    );
    assert_eq!(c.cli_api().text, "http://apollo:4200/graphql");
    assert_eq!(c.cli_api().source, "~/.prefect/config.toml [cloud] api");
    let (_h, c) = with_files(&[], &[("PREFECT__CLOUD__API", "http://10.1.2.3:4200")]);
    assert!(c.cli_targets_server());
    assert_eq!(c.cli_api().source, "PREFECT__CLOUD__API");
}

#[test]
fn a_host_without_a_scheme_breaks_the_cli() {
    let (_h, c) = with_files(
        &[(
            "config.toml",
            "backend = \"server\"\n[server]\nhost = \"localhost\"\n",
        )],
        &[],
    );
    let api = c.cli_api();
    assert_eq!(api.text, "localhost:4200");
    assert_eq!(
        api.call.error_text().unwrap(),
        "InvalidSchema: No connection adapters were found for 'localhost:4200'"
    );
}

#[test]
fn the_database_settings_make_the_connection_url() {
    let (_h, c) = with_files(
        &[(
            "config.toml",
            "[server.database]\nhost = \"db.internal\"\nport = 6543\npassword = \"1_000\"\n",
        )],
        &[("PREFECT__SERVER__DATABASE__USERNAME", "app")],
    );
    // "1_000" is the integer 1000 to Prefect.
    assert_eq!(
        c.database_url().value,
        "postgresql://app:1000@db.internal:6543/prefect_server"
    );
    assert!(
        c.database_url()
            .source
            .contains("PREFECT__SERVER__DATABASE__USERNAME")
    );
    assert!(c.database_url().source.contains("[server.database] host"));
}

#[test]
fn any_reference_is_interpolated_and_a_missing_one_is_empty() {
    let (_h, c) = with_files(
        &[(
            "config.toml",
            "[server]\nhost_ip = \"10.0.0.9\"\nendpoint = \"http://${server.host_ip}:${server.host_port}${server.nope}\"\n",
        )],
        &[],
    );
    assert_eq!(c.server_endpoint().value, "http://10.0.0.9:4200");
    assert!(c.broken.is_none());
    assert!(c.problems.is_empty(), "{:?}", c.problems);
}

#[test]
fn environment_variables_and_home_are_expanded() {
    let (h, c) = with_files(
        &[(
            "config.toml",
            "[server]\nhost = \"http://$APOLLO_HOST\"\n[server.ui]\nhost = \"~/ui\"\n",
        )],
        &[("APOLLO_HOST", "apollo.internal")],
    );
    assert_eq!(c.server_endpoint().value, "http://apollo.internal:4200");
    assert_eq!(
        c.ui_endpoint().value,
        format!("{}/ui:8080", h.path().display())
    );
}

#[test]
fn user_config_path_moves_the_file_and_home_dir_does_not() {
    let home = tempfile::tempdir().unwrap();
    let elsewhere = home.path().join("elsewhere.toml");
    std::fs::write(&elsewhere, "[server]\nport = 9999\n").unwrap();
    let c = PrefectConfig::load(&env(
        home.path(),
        &[("PREFECT__USER_CONFIG_PATH", "~/elsewhere.toml")],
    ));
    assert_eq!(c.server_endpoint().value, "http://localhost:9999");
    let moved = home.path().join("moved");
    std::fs::create_dir(&moved).unwrap();
    std::fs::write(moved.join("config.toml"), "[server]\nport = 1\n").unwrap();
    let c = PrefectConfig::load(&env(
        home.path(),
        &[("PREFECT__HOME_DIR", moved.to_str().unwrap())],
    ));
    assert_eq!(c.server_endpoint().value, "http://localhost:4200");
    assert!(c.user_config.is_none());
}

#[test]
fn environment_keys_are_case_insensitive_after_the_prefix() {
    let (_h, c) = with_files(&[], &[("PREFECT__server__Host", "http://h")]);
    assert_eq!(c.server_endpoint().value, "http://h:4200");
    let (_h, c) = with_files(&[], &[("prefect__server__host", "http://h")]);
    assert_eq!(c.server_endpoint().value, "http://localhost:4200");
}

#[test]
fn what_prefect_cannot_load_is_broken_not_fatal() {
    let (_h, c) = with_files(&[("config.toml", "[server]\nx = [1, \"a\"]\n")], &[]);
    assert!(
        c.broken
            .as_ref()
            .unwrap()
            .contains("Not a homogeneous array"),
        "{:?}",
        c.broken
    );
    assert_eq!(c.server_endpoint().value, "http://localhost:4200");
    let (_h, c) = with_files(&[("config.toml", "[server\nhost = ")], &[]);
    assert!(
        c.broken
            .as_ref()
            .unwrap()
            .starts_with("~/.prefect/config.toml is not valid TOML")
    );
    let (_h, c) = with_files(&[("config.toml", "[server]\nkeys = 1\n")], &[]);
    assert!(
        c.broken
            .as_ref()
            .unwrap()
            .contains("Invalid config key: \"keys\"")
    );
    let (_h, c) = with_files(&[("config.toml", "tasks = 1\n")], &[]);
    assert!(c.broken.is_some());
    let (_h, c) = with_files(
        &[("config.toml", "server = \"x\"\n")],
        &[("PREFECT__SERVER__HOST", "http://h")],
    );
    assert!(
        c.broken
            .as_ref()
            .unwrap()
            .contains("needs it to be a section")
    );
}

#[test]
fn a_section_replaced_by_a_scalar_loses_its_keys() {
    let (_h, c) = with_files(&[], &[("PREFECT__CLOUD", "x")]);
    assert!(matches!(
        c.cli_api().call,
        Call::Fails {
            exception: "AttributeError",
            ..
        }
    ));
}

#[test]
fn self_reference_does_not_loop() {
    let home = tempfile::tempdir().unwrap();
    let c = PrefectConfig::load(&env(
        home.path(),
        &[("PREFECT__SERVER__HOST", "${server.endpoint}")],
    ));
    assert!(c.server_endpoint().value.contains("${"));
    // Doubling references are bounded.
    let c = PrefectConfig::load(&env(
        home.path(),
        &[(
            "PREFECT__SERVER__HOST",
            &"${server.host}${server.host}".repeat(2000),
        )],
    ));
    assert!(c.server_endpoint().value.len() <= 2 << 20);
}

#[test]
fn secrets_are_registered_before_and_after_typing() {
    let (_h, _c) = with_files(
        &[(
            "config.toml",
            "[server.database]\npassword = \"zq-canary-77\"\n",
        )],
        &[],
    );
    let out = crate::redact::scrub("postgresql://prefect:zq-canary-77@localhost");
    assert!(!out.contains("zq-canary-77"), "{out}");
}
