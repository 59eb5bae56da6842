//! A secret on a line the doctor quotes: values files that fail to parse on a line (or in a flow
//! mapping) holding a password, a URL's credentials, and `--set` expressions that fail around one.
//! No part of the canary may reach stdout, stderr or any report file, in any format, and the error
//! must still say where (file, line, column; the flag for `--set`).

use crate::support;

use support::{run_once, run_sub};

/// Distinct from every other canary of the suite; its first half is looked for too (a secret cut
/// by a cap must not be half-printed).
const CANARY: &str = "Snip7Canary-w3x9Zq";
const HALF: &str = "Snip7Can";

fn assert_clean(what: &str, text: &str) {
    for needle in [CANARY, HALF] {
        assert!(
            !text.contains(needle),
            "{needle:?} leaked into {what}:\n{text}"
        );
    }
}

/// Runs preflight on `yaml` in every format, with every report file written; returns the JSON run
/// after asserting that nothing holds the canary and that the error says where.
fn preflight_file(name: &str, yaml: &str, line: u64) -> support::Run {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, yaml).unwrap();
    let file = file.display().to_string();
    let reports: Vec<(String, String)> = ["json", "junit", "sarif", "text"]
        .iter()
        .map(|f| {
            let path = dir.path().join(format!("report.{f}")).display().to_string();
            (format!("{f}={path}"), path)
        })
        .collect();
    let mut args = vec!["-f", file.as_str()];
    for (spec, _) in &reports {
        args.extend(["--report", spec.as_str()]);
    }
    let run = run_sub("preflight", &args, &[CANARY, HALF]);
    for (spec, path) in &reports {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_clean(spec, &text);
    }
    assert_eq!(run.status("values.parse"), "fail", "{name}: {}", run.text);
    let loc = &run.result("values.parse")["location"];
    assert_eq!(loc["file"].as_str(), Some(file.as_str()), "{name}: {loc}");
    assert_eq!(loc["line"].as_u64(), Some(line), "{name}: {}", run.text);
    let column = loc["column"].as_u64().unwrap_or(0);
    assert!(column >= 1, "{name}: {loc}");
    assert!(
        run.text.contains(&format!("at {file}:{line}:{column}")),
        "{name}: the text report names the place:\n{}",
        run.text
    );
    // The snippet shows the line with its number, under the place in the text report.
    let snippet = loc["snippet"].as_str().unwrap_or_default();
    assert!(snippet.starts_with(&format!("{line} | ")), "{name}: {loc}");
    assert!(
        run.text.contains(&format!("        {line} | ")),
        "{name}: the text report shows the snippet:\n{}",
        run.text
    );
    run
}

/// The caret's column in the snippet points at the same character as the parser's column did.
fn caret_points_at(run: &support::Run, yaml: &str, line: u64) {
    let loc = &run.result("values.parse")["location"];
    let message = loc["snippet"].as_str().unwrap();
    let column = loc["column"].as_u64().unwrap() as usize;
    let original: Vec<char> = yaml
        .lines()
        .nth(line as usize - 1)
        .unwrap()
        .chars()
        .collect();
    let mut lines = message.lines();
    let shown = lines.next().unwrap().split_once(" | ").unwrap().1;
    let marker = lines.next().unwrap().split_once(" | ").unwrap().1;
    let at = marker.find('^').unwrap();
    let shown_char = shown.chars().nth(at);
    let expected = original.get(column - 1).copied();
    if shown_char != Some('*') {
        assert_eq!(shown_char, expected, "caret misplaced in:\n{message}");
    }
}

#[test]
fn flow_style_mappings() {
    let yaml = format!("postgresql: {{postgresqlPassword: {CANARY}, user: [x}}\n");
    let run = preflight_file("flow.yaml", &yaml, 1);
    let snippet = run.result("values.parse")["location"]["snippet"].to_string();
    assert!(snippet.contains("postgresqlPassword: ****"), "{snippet}");
    assert!(snippet.contains("shown as ****"), "{snippet}");
    caret_points_at(&run, &yaml, 1);
}

#[test]
fn nested_flow_in_block_and_quoted_keys() {
    let yaml =
        format!("ui:\n  image: x\npostgresql:\n  auth: {{database: prefect, password: {CANARY}]\n");
    let run = preflight_file("nested.yaml", &yaml, 4);
    caret_points_at(&run, &yaml, 4);
    let yaml = format!(
        "\"postgresql\": {{\"postgresqlPassword\": \"{CANARY}\", 'auth': {{'password': '{CANARY}'}} ]\n"
    );
    let run = preflight_file("quoted.yaml", &yaml, 1);
    caret_points_at(&run, &yaml, 1);
}

#[test]
fn a_password_and_the_error_on_one_line() {
    for yaml in [
        format!("postgresql:\n  auth:\n    password: {CANARY}: oops\n"),
        format!("postgresql:\n  postgresqlPassword: \"{CANARY}\" trailing\n"),
        format!("postgresql:\n  auth:\n    password: {CANARY}, x: {{\n"),
    ] {
        let line = yaml.lines().position(|l| l.contains(CANARY)).unwrap() as u64 + 1;
        let run = preflight_file("same-line.yaml", &yaml, line);
        caret_points_at(&run, &yaml, line);
    }
}

#[test]
fn a_url_with_credentials_on_the_failing_line() {
    let yaml = format!("ui:\n  apolloApiUrl: http://admin:{CANARY}@api.example.com/graphql: x\n");
    let run = preflight_file("url.yaml", &yaml, 2);
    let snippet = run.result("values.parse")["location"]["snippet"].to_string();
    assert!(snippet.contains("http://admin:****@"), "{snippet}");
    caret_points_at(&run, &yaml, 2);
}

#[test]
fn a_multi_line_flow_mapping_failing_on_a_later_line() {
    // The failing line holds only the value; its key is on the line before.
    let yaml = format!(
        "postgresql: {{\n  user: prefect,\n  postgresqlPassword:\n    {CANARY}, b: c: d }}\n"
    );
    let run = preflight_file("multi.yaml", &yaml, 4);
    caret_points_at(&run, &yaml, 4);
    let yaml = format!("postgresql: {{\n  postgresqlPassword:\n    \"{CANARY}\" \"x\"}}\n");
    preflight_file("multi-quoted.yaml", &yaml, 3);
    let yaml = format!("postgresql: {{\n  postgresqlPassword: {CANARY},\n  user: prefect\n");
    let line = {
        // Where the parser reports an unclosed mapping is its business; the test takes its word
        // for the line but still demands no canary.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("probe.yaml");
        std::fs::write(&f, &yaml).unwrap();
        let (_, out, _, _) = run_once(&["preflight", "-o", "json", "-f", &f.display().to_string()]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        support::result_of(&v, "values.parse")["location"]["line"]
            .as_u64()
            .unwrap()
    };
    preflight_file("unclosed.yaml", &yaml, line);
}

#[test]
fn a_secret_cut_by_the_width_is_not_half_shown() {
    // The password sits where a 120-character window would cut it in two.
    let yaml = format!(
        "ui:\n  annotations: {{a: {}, password: {CANARY}{CANARY}, b: ]\n",
        "x".repeat(70)
    );
    let run = preflight_file("wide.yaml", &yaml, 2);
    caret_points_at(&run, &yaml, 2);
}

#[test]
fn set_expressions_failing_around_a_secret() {
    let long_url = format!(
        "a.b={},c.url=postgres://u:{CANARY}@db.example.com/prefect,d[",
        "y".repeat(166)
    );
    for (flag, expr) in [
        ("--set", format!("postgresql.auth.password={CANARY},a[")),
        (
            "--set-string",
            format!("postgresql.postgresqlPassword={CANARY},b[zz]=1"),
        ),
        (
            "--set",
            format!("postgresql.externalHostname=postgres://u:{CANARY}@h/db,x["),
        ),
        // The URL's password straddles the 200-character cap of the shown expression.
        ("--set", long_url),
        (
            "--set",
            format!("ui.apolloApiUrl=http://u:{CANARY}@h/graphql"),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r.json").display().to_string();
        let spec = format!("json={report}");
        let (code, out, err, _) =
            run_once(&["preflight", flag, &expr, "--report", &spec, "-o", "sarif"]);
        assert_clean(&format!("{flag} {expr} stdout"), &out);
        assert_clean(&format!("{flag} {expr} stderr"), &err);
        if let Ok(text) = std::fs::read_to_string(&report) {
            assert_clean("the report file", &text);
        }
        if code == 2 {
            assert!(err.contains(flag), "the error names the flag: {err}");
        } else {
            // A valid expression: its location names the assignment, the password masked.
            assert!(out.contains(flag), "{out}");
        }
    }
}
