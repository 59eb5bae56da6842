//! Values and flags read as Helm reads them, with real Helm as the oracle.

use super::*;

/// Helm's own reading of values files and flags: `helm template` (the Helm the real control plane
/// builds) of a chart whose defaults are the chart generation's `values.yaml` and whose one
/// template prints `.Values` as JSON. `Err`: Helm's error.
fn helm_reads(
    dir: &std::path::Path,
    generation: &str,
    files: &[&str],
    flags: &[(&str, &str)],
) -> Result<Value, String> {
    let chart = dir.join(format!("chart-{generation}"));
    if !chart.join("Chart.yaml").is_file() {
        std::fs::create_dir_all(chart.join("templates")).expect("chart dir");
        std::fs::write(
            chart.join("Chart.yaml"),
            "apiVersion: v2\nname: prefect-server\nversion: 2022.12.22\n",
        )
        .expect("Chart.yaml");
        let defaults = std::fs::read_to_string(format!(
            "{}/chart/values-{generation}.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("chart values");
        std::fs::write(chart.join("values.yaml"), defaults).expect("values.yaml");
        std::fs::write(
            chart.join("templates/values.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: values\ndata:\n  values: {{ toJson .Values | quote }}\n",
        )
        .expect("template");
    }
    let mut cmd = std::process::Command::new(support::cluster::bin_dir().join("helm"));
    cmd.arg("template").arg("r").arg(&chart);
    for f in files {
        cmd.arg("-f").arg(f);
    }
    for (flag, value) in flags {
        cmd.arg(flag).arg(value);
    }
    let home = dir.join("helm-home");
    let out = cmd
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("KUBECONFIG")
        .output()
        .expect("helm template");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let doc: Value = serde_saphyr::from_str(&String::from_utf8_lossy(&out.stdout)).expect("yaml");
    Ok(serde_json::from_str(doc["data"]["values"].as_str().expect("values")).expect("json"))
}

/// The doctor's reading of the same files and flags: the merged values preflight's checks and a
/// `[values]` user check see. `Err`: the doctor's refusal (the run's usage error or a values
/// file's parse error).
fn doctor_reads(generation: &str, files: &[&str], flags: &[(&str, &str)]) -> Result<Value, String> {
    use prefect_doctor::chart::{
        set::SetKind,
        values::{Input, load},
    };
    let mut input = Input {
        chart_version: Some(
            if generation == "2022.05" {
                "2022.05.09"
            } else {
                "2022.12.22"
            }
            .to_string(),
        ),
        ..Default::default()
    };
    for f in files {
        input.files.push((
            f.to_string(),
            std::fs::read_to_string(f).map_err(|e| e.to_string()),
        ));
    }
    for (flag, value) in flags {
        let kind = SetKind::of_flag(flag).unwrap_or_else(|| panic!("{flag}"));
        input.sets.push((value.to_string(), kind));
    }
    let loaded = load(&input)?;
    if let Some(e) = loaded.errors.first() {
        return Err(match &e.location {
            Some(l) => format!("{} (line {})", e.message, l.line),
            None => e.message.clone(),
        });
    }
    Ok(loaded.values)
}

/// Numbers compared by value (Helm's JSON writes 8 and 8.0 alike).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Where two values differ (at most ten places), for the failure message.
fn differences(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    if out.len() >= 10 || same(a, b) {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let p = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => differences(v, w, &p, out),
                    (Some(v), None) => {
                        out.push(format!("{p}: Helm has {v}, the doctor has no key"))
                    }
                    (None, Some(w)) => {
                        out.push(format!("{p}: Helm has no key, the doctor has {w}"))
                    }
                    (None, None) => {}
                }
            }
        }
        _ => out.push(format!("{path}: Helm has {a}, the doctor has {b}")),
    }
}

#[test]
fn values_and_flags_are_read_as_helm_reads_them() {
    let helm = support::cluster::bin_dir().join("helm");
    if !helm.is_file() {
        assert!(
            std::env::var_os("PREFECT_DOCTOR_CLUSTER_REQUIRED").is_none(),
            "no helm at {}",
            helm.display()
        );
        eprintln!("SKIPPED: no helm built (tests/cluster/build)");
        return;
    }
    let files = Files::new();
    let dir = files.0.path().to_path_buf();
    let written = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let f = |name: &str, text: &str| {
        assert!(
            written.borrow_mut().insert(name.to_string()),
            "{name} written twice"
        );
        files.write(name, text)
    };
    let literal = f("literal.txt", "line one\nline two, with a comma\n");
    // (what, generation, files, flags)
    type Case<'a> = (&'a str, &'a str, Vec<String>, Vec<(&'a str, String)>);
    let cases: Vec<Case> = vec![
        ("chart defaults alone", "2022.12", vec![], vec![]),
        ("the older generation's defaults", "2022.05", vec![], vec![]),
        (
            "YAML 1.1 booleans",
            "2022.12",
            vec![f(
                "bool.yaml",
                "agent:\n  enabled: yes\nui:\n  enabled: off\njobs:\n  createTenant:\n    enabled: On\n",
            )],
            vec![],
        ),
        (
            "YAML 1.1 octal and other numbers",
            "2022.12",
            vec![f(
                "num.yaml",
                "apollo:\n  replicas: 010\n  a: 0o10\n  b: 0x1F\n  c: 1_000\n  d: 190:20:30\n  h: 1e3\n  i: +12\n  j: 0b101\n  k: 007.5\n  l: 0777\n  m: -010\n  n: '010'\n  o: 0.5\n",
            )],
            vec![],
        ),
        (
            "infinity, which JSON cannot hold",
            "2022.12",
            vec![f("inf.yaml", "apollo:\n  e: .inf\n")],
            vec![],
        ),
        (
            "not a number, which JSON cannot hold",
            "2022.12",
            vec![f("nan.yaml", "apollo:\n  g: .NaN\n")],
            vec![],
        ),
        (
            "YAML 1.1 nulls and y/n",
            "2022.12",
            vec![f(
                "null.yaml",
                "ui:\n  a: ~\n  b: Null\n  c: y\n  d: n\n  e: NO\n  f: True\n  g: 'y'\n",
            )],
            vec![],
        ),
        (
            "keys YAML 1.1 reads as booleans and numbers",
            "2022.12",
            vec![f(
                "keys.yaml",
                "labels:\n  y: a\n  n: b\n  on: c\n  010: d\n  'off': e\n",
            )],
            vec![],
        ),
        (
            "a syntax error",
            "2022.12",
            vec![f("bad.yaml", "a: [1\n")],
            vec![],
        ),
        (
            "a document that is not a mapping",
            "2022.12",
            vec![f("notmap.yaml", "- a\n- b\n")],
            vec![],
        ),
        (
            "a user null for a key the chart does not have",
            "2022.12",
            vec![f("newnull.yaml", "extra: null\nui:\n  extra: ~\n")],
            vec![("--set", "other=null".to_string())],
        ),
        (
            "files merged in order, nulls deleting chart defaults",
            "2022.12",
            vec![
                f(
                    "one.yaml",
                    "agent:\n  enabled: true\n  image:\n    tag: one\nui:\n  apolloApiUrl: http://one/graphql\n",
                ),
                f(
                    "two.yaml",
                    "agent:\n  image:\n    tag: two\nui:\n  apolloApiUrl: null\nannotations: null\n",
                ),
            ],
            vec![],
        ),
        (
            "a null in the chart's own defaults",
            "2022.05",
            vec![],
            vec![],
        ),
        (
            "empty and comment-only files",
            "2022.12",
            vec![f("empty.yaml", ""), f("comment.yaml", "# nothing here\n")],
            vec![],
        ),
        (
            "--set typing, lists, escapes",
            "2022.12",
            vec![],
            vec![
                (
                    "--set",
                    "apollo.replicas=3,agent.enabled=true,ui.apolloApiUrl=null,a.b=007,c=0,d=-5"
                        .to_string(),
                ),
                (
                    "--set",
                    "ui.ingress.hosts[1].host=h.example,list={x,y,z}".to_string(),
                ),
                (
                    "--set",
                    "annotations.kubernetes\\.io/ingress\\.class=nginx,pw=a\\,b".to_string(),
                ),
            ],
        ),
        (
            "list index sets into an existing list",
            "2022.12",
            vec![f("list.yaml", "extra:\n  - a\n  - b\n  - c\n")],
            vec![("--set", "extra[1]=B".to_string())],
        ),
        (
            "--set-string",
            "2022.12",
            vec![],
            vec![(
                "--set-string",
                "apollo.replicas=3,agent.enabled=true,n=null".to_string(),
            )],
        ),
        (
            "--set-json",
            "2022.12",
            vec![],
            vec![
                (
                    "--set-json",
                    r#"agent.env=[{"name":"NAMESPACE","value":"flows"}],apollo.replicas=2"#
                        .to_string(),
                ),
                (
                    "--set-json",
                    r#"{"ui": {"apolloApiUrl": "http://j/graphql", "n": null}}"#.to_string(),
                ),
            ],
        ),
        (
            "--set-literal",
            "2022.12",
            vec![],
            vec![(
                "--set-literal",
                "postgresql.auth.password=a,b=c\\d{e}".to_string(),
            )],
        ),
        (
            "--set-file",
            "2022.12",
            vec![],
            vec![("--set-file", format!("ui.motd={literal}"))],
        ),
        (
            "Helm's order of the flags, whatever the command line's",
            "2022.12",
            vec![f("order.yaml", "k: file\n")],
            vec![
                ("--set-literal", "k=literal".to_string()),
                ("--set-string", "k=string".to_string()),
                ("--set", "k=set".to_string()),
                ("--set-json", r#"k="json""#.to_string()),
            ],
        ),
        (
            "several documents in one file",
            "2022.12",
            vec![f("multi.yaml", "a: 1\n---\nb: 2\n")],
            vec![],
        ),
    ];
    // Flags both must refuse.
    let mut cases = cases;
    for (what, flag, expr) in [
        ("--set without a value", "--set", "a.b"),
        (
            "--set with an index that is not a number",
            "--set",
            "a[x]=1",
        ),
        ("--set-json that does not parse", "--set-json", "a={bad"),
        (
            "--set-json object that does not parse",
            "--set-json",
            "{\"a\": }",
        ),
        (
            "--set-file of a missing file",
            "--set-file",
            "a=/nonexistent/file",
        ),
    ] {
        cases.push((what, "2022.12", vec![], vec![(flag, expr.to_string())]));
    }
    let line = regex::Regex::new(r"line (\d+)").expect("regex");
    let mut differ = Vec::new();
    for (what, generation, paths, flags) in &cases {
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        let flags: Vec<(&str, &str)> = flags.iter().map(|(f, v)| (*f, v.as_str())).collect();
        let helm = helm_reads(&dir, generation, &paths, &flags);
        let doctor = doctor_reads(generation, &paths, &flags);
        match (&helm, &doctor) {
            (Ok(h), Ok(d)) if same(h, d) => {}
            (Ok(h), Ok(d)) => {
                let mut places = Vec::new();
                differences(h, d, "", &mut places);
                differ.push(format!("{what}: {}", places.join("; ")));
            }
            (Err(h), Err(d)) => {
                // Both refuse: where Helm names a line, the doctor names the same one.
                if let Some(n) = line.captures(h).map(|c| c[1].to_string())
                    && !line.captures_iter(d).any(|c| c[1] == n)
                {
                    differ.push(format!(
                        "{what}: Helm refuses at line {n} ({}), the doctor: {d}",
                        h.trim()
                    ));
                }
            }
            (Ok(_), Err(e)) => {
                differ.push(format!("{what}: Helm reads it, the doctor refuses: {e}"))
            }
            (Err(e), Ok(_)) => differ.push(format!(
                "{what}: Helm refuses ({}), the doctor reads it",
                e.trim()
            )),
        }
    }
    assert!(
        differ.is_empty(),
        "the doctor and Helm differ:\n{}",
        differ.join("\n")
    );
}
