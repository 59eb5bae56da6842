//! The real `prefect==1.4.1` as the oracle for how the prefect CLI's configuration resolves.
//!
//! For each configuration below (files in a throwaway HOME, `PREFECT__*` and other variables), the
//! real package is imported in a clean environment and asked what the CLI would do: its backend, its
//! `cloud.api`, where `prefect.Client` sends a query (the first request is caught before it leaves
//! the process), the UI endpoint and the database URL, or the exception that stops every `prefect`
//! command. prefect-doctor must read the same from the same files and variables, both in its library
//! (`PrefectConfig`) and in what the built binary reports (its API target, `prefect.cli-config`,
//! notices), and never print the canary password. The built-in defaults and the names Prefect
//! refuses as keys are compared with the package's too.
//!
//! The package lives in a virtualenv: `PREFECT_DOCTOR_ORACLE_VENV` (which `.ci/run` prepares), else one
//! made under the test's target directory. Where it cannot be installed the test says so and passes,
//! unless `PREFECT_DOCTOR_ORACLE_REQUIRED` is set (as `.ci/run` sets it once the install worked).

use crate::support;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use prefect_doctor::probes::prefect_config::{Call, PrefectConfig};
use serde_json::Value;

/// A database password that must never appear in prefect-doctor's output.
const CANARY: &str = "oracle-Canary-pw-83kq";

/// What the oracle runs inside the real package: our own probe, printing one JSON object.
const ORACLE_PY: &str = r#"
import json, sys
out = {}
try:
    import prefect
except BaseException as e:
    print(json.dumps({"broken": type(e).__name__ + ": " + str(e)}))
    sys.exit(0)
c = prefect.config

def get(path):
    cur = c
    try:
        for p in path.split("."):
            cur = cur[p]
    except Exception:
        return None
    return str(cur)

for key, path in [("backend", "backend"), ("cloud_api", "cloud.api"),
                  ("ui_endpoint", "server.ui.endpoint"),
                  ("database", "server.database.connection_url")]:
    out[key] = get(path)

# Where the CLI's client sends a query: the first request is caught before it is sent.
import requests.adapters

class Caught(Exception):
    pass

def send(self, request, **kwargs):
    raise Caught(request.url)

requests.adapters.HTTPAdapter.send = send
try:
    prefect.Client().graphql("query { hello }")
    out["call"] = {"fails": "NoRequest"}
except Caught as e:
    out["call"] = {"sends": e.args[0]}
except BaseException as e:
    out["call"] = {"fails": type(e).__name__}

if "--defaults" in sys.argv:
    # The built-in configuration as loading leaves it, before Prefect turns [tasks.defaults] into
    # Python objects (interpolation sees these values).
    from prefect.configuration import DEFAULT_CONFIG, load_configuration
    flat = {}
    stack = [("", load_configuration(path=DEFAULT_CONFIG))]
    while stack:
        prefix, node = stack.pop()
        for k, v in node.items():
            key = prefix + k
            if hasattr(v, "items"):
                stack.append((key + ".", v))
            else:
                flat[key] = str(v)
    out["defaults"] = flat
    out["attributes"] = sorted(dir(prefect.configuration.Config))
print(json.dumps(out))
"#;

/// Runs `cmd` for at most `limit`; `Err` says why it did not succeed.
fn bounded(mut cmd: Command, limit: Duration) -> Result<String, String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cmd:?} cannot start: {e}"))?;
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{cmd:?} did not finish within {limit:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(e.to_string()),
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        ))
    }
}

fn has_prefect(python: &Path) -> bool {
    let mut c = Command::new(python);
    c.args([
        "-c",
        "import prefect, sys; sys.exit(prefect.__version__ != '1.4.1')",
    ]);
    bounded(c, Duration::from_secs(60)).is_ok()
}

/// The virtualenv's python with `prefect==1.4.1`, made once per test run.
fn oracle_python() -> Result<PathBuf, String> {
    static MADE: Mutex<Option<Result<PathBuf, String>>> = Mutex::new(None);
    let mut made = MADE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = made.as_ref() {
        return r.clone();
    }
    let r = (|| {
        if let Ok(dir) = std::env::var("PREFECT_DOCTOR_ORACLE_VENV") {
            let python = Path::new(&dir).join("bin/python");
            if has_prefect(&python) {
                return Ok(python);
            }
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("prefect-1.4.1-venv");
        let python = dir.join("bin/python");
        if has_prefect(&python) {
            return Ok(python);
        }
        let mut venv = Command::new("python3");
        venv.args(["-m", "venv", "--clear"]).arg(&dir);
        bounded(venv, Duration::from_secs(120))?;
        let mut pip = Command::new(dir.join("bin/pip"));
        pip.args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "prefect==1.4.1",
        ]);
        bounded(pip, Duration::from_secs(900))?;
        if has_prefect(&python) {
            Ok(python)
        } else {
            Err("prefect 1.4.1 does not import after installing it".to_string())
        }
    })();
    *made = Some(r.clone());
    r
}

/// One configuration: files under HOME (`~/` paths) or absolute, and variables.
struct Case {
    name: &'static str,
    files: Vec<(&'static str, String)>,
    vars: Vec<(&'static str, String)>,
}

fn case(name: &'static str, files: &[(&'static str, &str)], vars: &[(&'static str, &str)]) -> Case {
    Case {
        name,
        files: files.iter().map(|(p, t)| (*p, t.to_string())).collect(),
        vars: vars.iter().map(|(k, v)| (*k, v.to_string())).collect(),
    }
}

fn cases() -> Vec<Case> {
    let server = "backend = \"server\"\n";
    vec![
        case("nothing at all", &[], &[]),
        case(
            "backend.toml says server",
            &[("~/.prefect/backend.toml", server)],
            &[],
        ),
        case(
            "config.toml says server",
            &[("~/.prefect/config.toml", server)],
            &[],
        ),
        case("PREFECT__BACKEND", &[], &[("PREFECT__BACKEND", "server")]),
        case(
            "backend.toml over config.toml",
            &[
                ("~/.prefect/config.toml", "backend = \"cloud\"\n"),
                ("~/.prefect/backend.toml", server),
            ],
            &[],
        ),
        case(
            "PREFECT__BACKEND over backend.toml",
            &[("~/.prefect/backend.toml", server)],
            &[("PREFECT__BACKEND", "cloud")],
        ),
        case(
            "server host and port",
            &[(
                "~/.prefect/config.toml",
                "backend = \"server\"\n[server]\nhost = \"http://apollo.internal\"\nport = 4300\n",
            )],
            &[],
        ),
        case(
            "server endpoint",
            &[(
                "~/.prefect/config.toml",
                "backend = \"server\"\n[server]\nendpoint = \"https://prefect.example.com/graphql\"\n",
            )],
            &[],
        ),
        case(
            "PREFECT__SERVER__ENDPOINT",
            &[("~/.prefect/backend.toml", server)],
            &[(
                "PREFECT__SERVER__ENDPOINT",
                "https://prefect.example.com/graphql",
            )],
        ),
        case(
            "1: [cloud] api with the server backend",
            &[(
                "~/.prefect/config.toml",
                "backend = \"server\"\n[cloud]\napi = \"http://apollo:4200/graphql\"\n",
            )],
            &[],
        ),
        case(
            "1: PREFECT__CLOUD__API with the server backend",
            &[],
            &[
                ("PREFECT__BACKEND", "server"),
                (
                    "PREFECT__CLOUD__API",
                    "http://prefect-apollo.prefect:4200/graphql",
                ),
            ],
        ),
        case(
            "2: a host without a scheme",
            &[(
                "~/.prefect/config.toml",
                "backend = \"server\"\n[server]\nhost = \"localhost\"\n",
            )],
            &[],
        ),
        case(
            "3: [server.database] parts",
            &[(
                "~/.prefect/config.toml",
                "[server.database]\nhost = \"db.internal\"\nport = 6543\nusername = \"app\"\nname = \"prefect\"\n",
            )],
            &[("PREFECT__SERVER__DATABASE__PASSWORD", CANARY)],
        ),
        case(
            "3: connection_url in the file",
            &[(
                "~/.prefect/config.toml",
                "[server.database]\nconnection_url = \"postgresql://u:oracle-Canary-pw-83kq@pg.example.com:5433/pf\"\n",
            )],
            &[],
        ),
        case(
            "3: PREFECT__SERVER__DATABASE__CONNECTION_URL",
            &[],
            &[(
                "PREFECT__SERVER__DATABASE__CONNECTION_URL",
                "postgresql://prefect:oracle-Canary-pw-83kq@10.0.0.7:5432/prefect_server",
            )],
        ),
        case(
            "4: interpolation of other keys",
            &[(
                "~/.prefect/config.toml",
                "backend = \"server\"\n[server]\nendpoint = \"http://${server.host_ip}:${server.host_port}/graphql\"\n",
            )],
            &[],
        ),
        case(
            "4: a missing key reads as empty",
            &[(
                "~/.prefect/config.toml",
                "backend = \"server\"\n[server]\nhost = \"http://apollo${server.nope}\"\n",
            )],
            &[],
        ),
        case(
            "4: a key of a section the doctor does not model",
            &[(
                "~/.prefect/config.toml",
                "backend = \"server\"\n[mine]\nh = \"apollo.mine\"\n[server]\nhost = \"http://${mine.h}\"\n",
            )],
            &[],
        ),
        case(
            "5: $VAR in a value",
            &[(
                "~/.prefect/config.toml",
                "backend = \"server\"\n[server]\nhost = \"http://$APOLLO_HOST\"\n",
            )],
            &[("APOLLO_HOST", "apollo.from-env")],
        ),
        case(
            "5: ${VAR} and ~",
            &[(
                "~/.prefect/config.toml",
                "[server.ui]\nhost = \"http://${UI_HOST}\"\n[server.database]\nname = \"~/db\"\n",
            )],
            &[("UI_HOST", "ui.from-env")],
        ),
        case(
            "6: PREFECT__USER_CONFIG_PATH",
            &[(
                "~/elsewhere/prefect.toml",
                "backend = \"server\"\n[server]\nport = 4999\n",
            )],
            &[("PREFECT__USER_CONFIG_PATH", "~/elsewhere/prefect.toml")],
        ),
        case(
            "6: PREFECT__HOME_DIR does not move config.toml",
            &[
                (
                    "~/other-home/config.toml",
                    "backend = \"server\"\n[server]\nport = 4888\n",
                ),
                ("~/.prefect/config.toml", "backend = \"server\"\n"),
            ],
            &[("PREFECT__HOME_DIR", "~/other-home")],
        ),
        case(
            "7: lower-case variable",
            &[],
            &[
                ("PREFECT__backend", "server"),
                ("PREFECT__server__host", "http://lower.case"),
            ],
        ),
        case(
            "7: mixed-case variable",
            &[],
            &[
                ("PREFECT__BACKEND", "server"),
                ("PREFECT__Server__Port", "4777"),
            ],
        ),
        case(
            "8: a mixed-type array",
            &[(
                "~/.prefect/config.toml",
                "backend = \"server\"\n[server]\nx = [1, \"a\"]\n",
            )],
            &[],
        ),
        case(
            "8: not TOML at all",
            &[("~/.prefect/config.toml", "[server\nhost = ")],
            &[],
        ),
        case(
            "8: a key Prefect refuses",
            &[("~/.prefect/config.toml", "[server]\nkeys = 1\n")],
            &[],
        ),
        case(
            "8: [tasks] not a table",
            &[("~/.prefect/config.toml", "tasks = 1\n")],
            &[],
        ),
        case(
            "9: a configuration without a backend",
            &[("~/.prefect/config.toml", "[server]\nport = 4300\n")],
            &[],
        ),
        case(
            "string typing: a quoted number",
            &[(
                "~/.prefect/config.toml",
                "backend = \"server\"\n[server]\nport = \"04200\"\n",
            )],
            &[],
        ),
        case(
            "string typing: a Python literal in a variable",
            &[],
            &[
                ("PREFECT__BACKEND", "'server'"),
                ("PREFECT__SERVER__HOST", "\"http://quoted\""),
            ],
        ),
        case(
            "a section replaced by a value",
            &[("~/.prefect/backend.toml", server)],
            &[("PREFECT__CLOUD", "x")],
        ),
        case(
            "the UI endpoint set",
            &[(
                "~/.prefect/config.toml",
                "[server.ui]\nendpoint = \"https://ui.example.com\"\n",
            )],
            &[],
        ),
    ]
}

/// A case laid out in a fresh HOME: the environment for both sides.
fn lay_out(c: &Case, home: &Path) -> BTreeMap<String, String> {
    for (path, text) in &c.files {
        let p = match path.strip_prefix("~/") {
            Some(rest) => home.join(rest),
            None => PathBuf::from(path),
        };
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    let mut env: BTreeMap<String, String> = c
        .vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.insert("HOME".into(), home.display().to_string());
    env.insert("PATH".into(), "/usr/bin:/bin".into());
    env
}

#[test]
fn the_built_in_defaults_and_refused_keys_are_prefects() {
    let Ok(python) = oracle_python() else {
        // The first test says why (and fails where the oracle is required).
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let env = lay_out(&case("defaults", &[], &[]), home.path());
    let prefect = ask_prefect(&python, &env, &["--defaults"]);
    let doctor = PrefectConfig::load(&env);
    let defaults: toml::Table = include_str!("../../../src/probes/prefect_config/defaults.toml")
        .parse()
        .unwrap();
    let mut keys = Vec::new();
    let mut stack: Vec<(String, &toml::Table)> = vec![(String::new(), &defaults)];
    while let Some((prefix, t)) = stack.pop() {
        for (k, v) in t {
            let key = format!("{prefix}{k}");
            match v {
                toml::Value::Table(inner) => stack.push((format!("{key}."), inner)),
                _ => keys.push(key),
            }
        }
    }
    let mut disagree = Vec::new();
    for key in &keys {
        let theirs = prefect["defaults"][key].as_str();
        let ours = doctor.get(key).value;
        if theirs != Some(ours.as_str()) {
            disagree.push(format!("{key}: prefect {theirs:?} / doctor {ours:?}"));
        }
    }
    assert!(
        disagree.is_empty(),
        "defaults differ:\n{}",
        disagree.join("\n")
    );
    let attributes: Vec<&str> = prefect["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut ours: Vec<&str> = prefect_doctor::probes::prefect_config::CONFIG_ATTRIBUTES.to_vec();
    ours.sort_unstable();
    assert_eq!(ours, attributes, "the keys Prefect refuses (dir(Config))");
}

fn ask_prefect(python: &Path, env: &BTreeMap<String, String>, extra: &[&str]) -> Value {
    let mut cmd = Command::new(python);
    cmd.env_clear()
        .envs(env)
        .arg("-c")
        .arg(ORACLE_PY)
        .args(extra);
    let out = bounded(cmd, Duration::from_secs(120)).expect("the oracle runs");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("oracle output {out:?}: {e}"))
}

mod agreement;
