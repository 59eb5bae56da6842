//! The kube config read as kubectl reads it, kubectl the oracle.

use super::*;

/// A kube config file: clusters (name, server), contexts (name, cluster, user, namespace), users,
/// and its current context.
fn kc_file(
    clusters: &[(&str, &str)],
    contexts: &[(&str, &str, &str, Option<&str>)],
    current: Option<&str>,
) -> String {
    let mut y = String::from("apiVersion: v1\nkind: Config\n");
    if let Some(c) = current {
        y.push_str(&format!("current-context: {c}\n"));
    }
    y.push_str("clusters:\n");
    for (name, server) in clusters {
        y.push_str(&format!(
            "- name: {name}\n  cluster:\n    server: {server}\n"
        ));
    }
    y.push_str("contexts:\n");
    for (name, cluster, user, ns) in contexts {
        y.push_str(&format!(
            "- name: {name}\n  context:\n    cluster: {cluster}\n    user: {user}\n"
        ));
        if let Some(n) = ns {
            y.push_str(&format!("    namespace: {n}\n"));
        }
    }
    y.push_str("users:\n");
    let mut users: Vec<&str> = contexts.iter().map(|c| c.2).collect();
    users.dedup();
    for u in users {
        y.push_str(&format!("- name: {u}\n  user:\n    token: token-of-{u}\n"));
    }
    y
}

/// What kubectl resolves a kube config to: (server, context, namespace), or its refusal.
fn kubectl_resolves(
    home: &Path,
    kubeconfig_env: Option<&str>,
    flags: &[&str],
) -> Result<(String, String, String), String> {
    let mut cmd = std::process::Command::new("kubectl");
    cmd.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["config", "view", "--minify", "-o"])
        .arg("jsonpath={.clusters[0].cluster.server}|{.contexts[0].name}|{.contexts[0].context.namespace}");
    if let Some(k) = kubeconfig_env {
        cmd.env("KUBECONFIG", k);
    }
    // `config view` takes --context and --kubeconfig; -n is the doctor's and kubectl's namespace
    // flag for every other command, applied on top below.
    let mut namespace_flag = None;
    let mut it = flags.iter();
    while let Some(f) = it.next() {
        if *f == "-n" {
            namespace_flag = it.next().map(|s| s.to_string());
        } else {
            cmd.arg(f);
        }
    }
    let out = cmd.output().expect("kubectl runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut parts = text.splitn(3, '|').map(str::to_string);
    let (server, context, ns) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if server.is_empty() {
        return Err(format!("kubectl resolved no cluster: {text}"));
    }
    let ns = namespace_flag.unwrap_or(if ns.is_empty() { "default".into() } else { ns });
    Ok((server, context, ns))
}

/// What the doctor resolves the same kube config to, from its report's `kubernetes` target.
fn doctor_resolves(
    home: &Path,
    kubeconfig_env: Option<&str>,
    flags: &[&str],
) -> Result<(String, String, String), String> {
    let mut cmd = support::doctor();
    cmd.env("HOME", home);
    if let Some(k) = kubeconfig_env {
        cmd.env("KUBECONFIG", k);
    }
    let out = cmd
        .args([
            "check",
            "-o",
            "json",
            "--timeout",
            "1s",
            "--release",
            "prefect",
            "--only",
            "kube.release",
        ])
        .args(flags)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: Value = serde_json::from_slice(&out.stdout).map_err(|_| stderr.clone())?;
    let target = json["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["kind"] == "kubernetes"))
        .ok_or_else(|| format!("no kubernetes target: {json}"))?;
    let source = target["source"].as_str().unwrap_or("");
    // "kube context NAME in FILE, namespace NS"
    let rest = source.strip_prefix("kube context ").unwrap_or(source);
    let (context, ns) = rest.split_once(", namespace ").unwrap_or((rest, ""));
    let (context, file) = context.split_once(" in ").unwrap_or((context, ""));
    Ok((
        target["address"].as_str().unwrap_or("").to_string(),
        context.to_string(),
        format!("{ns}|{file}"),
    ))
}

/// The kube config as kubectl reads it, kubectl the oracle: for each layout of files, KUBECONFIG
/// and flags, the doctor reaches the server, context and namespace kubectl does, or both refuse.
#[test]
fn the_kube_config_is_read_as_kubectl_reads_it() {
    let kubectl_here = std::process::Command::new("sh")
        .args(["-c", "command -v kubectl"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !kubectl_here {
        assert!(
            std::env::var_os("CI").is_none(),
            "kubectl is on every machine CI runs on"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = d.join("home");
    std::fs::create_dir_all(home.join(".kube")).unwrap();
    let write = |name: &str, text: String| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    // Servers nothing listens on: both sides only resolve.
    let a = write(
        "a",
        kc_file(
            &[
                ("ca", "https://127.0.0.1:1"),
                ("shared", "https://127.0.0.1:2"),
            ],
            &[
                ("a", "ca", "ua", Some("team-a")),
                ("same", "shared", "ua", None),
            ],
            Some("a"),
        ),
    );
    let b = write(
        "b",
        kc_file(
            &[
                ("cb", "https://127.0.0.1:3/k8s/clusters/c-x"),
                ("shared", "https://127.0.0.1:4"),
            ],
            &[
                ("b", "cb", "ub", Some("team-b")),
                ("same", "shared", "ub", Some("from-b")),
            ],
            Some("b"),
        ),
    );
    let none = write(
        "none",
        kc_file(
            &[("cn", "https://127.0.0.1:5")],
            &[("nons", "cn", "un", None)],
            None,
        ),
    );
    // YAML 1.1, as kubectl reads it: a context named `no` is the boolean false.
    let boolean = write(
        "boolean",
        kc_file(
            &[("cy", "https://127.0.0.1:8")],
            &[("no", "cy", "uy", None)],
            Some("no"),
        ),
    );
    let dangling = write(
        "dangling",
        kc_file(
            &[("cd", "https://127.0.0.1:6")],
            &[("d", "nowhere", "ud", None)],
            Some("d"),
        ),
    );
    std::fs::write(
        home.join(".kube/config"),
        kc_file(
            &[("ch", "https://127.0.0.1:7")],
            &[("h", "ch", "uh", Some("home-ns"))],
            Some("h"),
        ),
    )
    .unwrap();
    let missing = d.join("missing").display().to_string();
    let cases: Vec<(&str, Option<String>, Vec<&str>)> = vec![
        (
            "first file's current context",
            Some(format!("{a}:{b}")),
            vec![],
        ),
        ("the other order", Some(format!("{b}:{a}")), vec![]),
        (
            "a missing file in the list",
            Some(format!("{missing}:{b}")),
            vec![],
        ),
        ("empty entries", Some(format!("::{b}:")), vec![]),
        (
            "duplicate names: the first file wins",
            Some(format!("{a}:{b}")),
            vec!["--context", "same"],
        ),
        (
            "duplicate names, other order",
            Some(format!("{b}:{a}")),
            vec!["--context", "same"],
        ),
        (
            "current-context from a later file",
            Some(format!("{none}:{b}")),
            vec![],
        ),
        (
            "--context over the file",
            Some(format!("{a}:{b}")),
            vec!["--context", "b"],
        ),
        (
            "-n over the context",
            Some(format!("{a}:{b}")),
            vec!["-n", "flagged"],
        ),
        (
            "a context without a namespace",
            Some(none.clone()),
            vec!["--context", "nons"],
        ),
        (
            "a name YAML 1.1 reads as a boolean",
            Some(boolean.clone()),
            vec![],
        ),
        ("~/.kube/config when KUBECONFIG is unset", None, vec![]),
        (
            "~/.kube/config when KUBECONFIG is empty",
            Some(String::new()),
            vec![],
        ),
        (
            "--kubeconfig over KUBECONFIG",
            Some(a.clone()),
            vec!["--kubeconfig", b.as_str()],
        ),
        (
            "a context naming a missing cluster",
            Some(dangling.clone()),
            vec![],
        ),
        (
            "an unknown --context",
            Some(a.clone()),
            vec!["--context", "nope"],
        ),
    ];
    let mut differ = Vec::new();
    let mut files: Vec<(String, String, String)> = Vec::new();
    for (name, env, flags) in &cases {
        let kubectl = kubectl_resolves(&home, env.as_deref(), flags);
        let doctor = doctor_resolves(&home, env.as_deref(), flags);
        // The doctor also says which file the context came from (kubectl does not): the first
        // file of the list that names it.
        let doctor = doctor.map(|(server, context, ns_file)| {
            let (ns, file) = ns_file.split_once('|').unwrap_or((&ns_file, "")).to_owned();
            files.push((name.to_string(), context.clone(), file.to_string()));
            (server, context, ns.to_string())
        });
        let same = match (&kubectl, &doctor) {
            (Ok(k), Ok(d)) => {
                k.0.trim_end_matches('/') == d.0.trim_end_matches('/') && k.1 == d.1 && k.2 == d.2
            }
            (Err(_), Err(_)) => true,
            _ => false,
        };
        eprintln!(
            "{name:<42} kubectl {kubectl:?}\n{:<42} doctor  {doctor:?}",
            ""
        );
        if !same {
            differ.push(format!(
                "{name}: kubectl {kubectl:?}, the doctor {doctor:?}"
            ));
        }
    }
    assert!(differ.is_empty(), "{differ:#?}");
    let file_of = |case: &str| {
        files
            .iter()
            .find(|(n, _, _)| n == case)
            .map(|(_, _, f)| f.clone())
            .unwrap_or_default()
    };
    assert_eq!(file_of("first file's current context"), a);
    assert_eq!(file_of("duplicate names: the first file wins"), a);
    assert_eq!(file_of("duplicate names, other order"), b);
    assert_eq!(
        file_of("~/.kube/config when KUBECONFIG is unset"),
        home.join(".kube/config").display().to_string()
    );
}
