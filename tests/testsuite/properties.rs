//! Property tests for the parsers that take hostile input (`--set`, values files, Helm releases,
//! servers' text) and for the promises around them: no panic, no echoed secret, no control character
//! in any rendered report.

use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use prefect_doctor::{
    catalog::{Catalog, Severity},
    chart::{release as helm, set, values},
    redact, render,
    report::{CheckResult, Report, Status, Target},
    untrusted,
};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any `--set` expression parses or fails with a message; neither panics nor takes long.
    #[test]
    fn set_expressions_never_panic(
        expr in r#"[a-z0-9.\[\]{}=,\\ ":]{0,200}"#,
        kind in prop::sample::select(set::SetKind::ALL.to_vec()),
    ) {
        let _ = set::parse(&expr, kind, &mut |p| Ok(p.to_string()));
    }

    /// Whatever follows or precedes it, the value of a password key is not in the error shown.
    #[test]
    fn set_errors_never_echo_a_password(
        before in prop::sample::select(vec!["", "a=1,", "ui.x[0]=y,", "b={c,d},"]),
        key in prop::sample::select(vec!["postgresql.auth.password", "postgresql.postgresqlPassword", "x.apiToken", "auth.postgresPassword"]),
        secret in "[A-Za-z0-9]{8,16}",
        after in prop::sample::select(vec!["", ",a[", ",b[zz]=1", ",{", ",=x", "\\", ",a..b=1", ",c[999999]=1"]),
        // --set-file's value is a path, not the secret.
        kind in prop::sample::select(vec![set::SetKind::Set, set::SetKind::String, set::SetKind::Json, set::SetKind::Literal]),
    ) {
        let expr = format!("{before}{key}={secret}{after}");
        let input = values::Input { sets: vec![(expr, kind)], ..Default::default() };
        match values::load(&input) {
            Err(e) => prop_assert!(!e.contains(&secret), "{e}"),
            Ok(loaded) => {
                for l in loaded.locations.values() {
                    prop_assert!(!l.file.contains(&secret), "{}", l.file);
                }
            }
        }
    }

    /// Any text parses as a values file or fails with a message.
    #[test]
    fn values_files_never_panic(text in r"(?s).{0,400}") {
        let _ = values::parse("f.yaml", &text);
    }

    /// Structured-looking YAML with deep nesting and anchors, too.
    #[test]
    fn yaml_shapes_never_panic(depth in 0usize..200, anchors in 0usize..20) {
        let mut text = String::new();
        for i in 0..depth {
            text.push_str(&format!("{}k{i}:\n", "  ".repeat(i)));
        }
        text.push_str(&format!("{}v: &a [1]\n", "  ".repeat(depth)));
        for i in 0..anchors {
            text.push_str(&format!("x{i}: [*a, *a]\n"));
        }
        let _ = values::parse("f.yaml", &text);
    }

    /// Any bytes, and any base64 of JSON-ish text, decode as a release or fail with a message.
    #[test]
    fn helm_releases_never_panic(raw in prop::collection::vec(any::<u8>(), 0..300), json_ish in r#"[\[\]{}":,a-z0-9 ]{0,300}"#) {
        let _ = helm::decode(&raw);
        let b64 = base64::engine::general_purpose::STANDARD.encode(json_ish.as_bytes());
        let _ = helm::decode(b64.as_bytes());
    }

    /// The password of a URL is masked wherever the URL stands in a text.
    #[test]
    fn url_passwords_are_masked_in_any_text(
        before in r"[ -~]{0,30}",
        scheme in prop::sample::select(vec!["http", "https", "postgres", "postgresql"]),
        user in "[a-z]{1,8}",
        password in "[A-Za-z0-9%!*-]{4,20}",
        host in r"[a-z0-9.\-]{1,20}(:[0-9]{1,5})?",
        after in r"(/[ -~]{0,30})?",
    ) {
        let text = format!("{before} {scheme}://{user}:{password}@{host}{after}");
        let masked = redact::mask_shapes(&text);
        prop_assert!(masked.contains(&format!("{user}:****@{host}")), "{masked}");
    }

    /// Whatever the text, the YAML secret scanner ends, and its spans are in order inside the text
    /// on character boundaries; the snippet of any line and column is built.
    #[test]
    fn the_yaml_secret_scanner_is_total(text in r"(?s)[ -~\n\t{}\[\]:,#'\x22é]{0,300}", line in 1usize..8, column in 0usize..400) {
        for (s, e) in redact::yaml::secret_spans(&text) {
            prop_assert!(s < e && e <= text.len());
            prop_assert!(text.is_char_boundary(s) && text.is_char_boundary(e));
        }
        let _ = redact::snippet::yaml_line(&text, line, column);
    }

    /// A password in a mapping written in flow style (JSON is YAML) or block style is masked in the
    /// snippet of every line, wherever the error is said to be.
    #[test]
    fn secret_values_are_masked_in_every_style(
        key in prop::sample::select(vec!["password", "postgresqlPassword", "\"apiToken\"", "'client_secret'", "credentials"]),
        secret in "[A-Za-z0-9]{3}[A-Za-z0-9@%!$*=/+-]{5,20}",
        quote in prop::sample::select(vec!["", "\"", "'"]),
        flow in any::<bool>(),
        column in 1usize..80,
    ) {
        let text = if flow {
            format!("postgresql: {{user: prefect, {key}: {quote}{secret}{quote}, x: [}}\n")
        } else {
            format!("postgresql:\n  user: prefect\n  {key}: {quote}{secret}{quote} ]: x\n")
        };
        for line in 1..=3 {
            if let Some(s) = redact::snippet::yaml_line(&text, line, column) {
                prop_assert!(!s.contains(&secret), "{s}");
            }
        }
    }

    /// Escaping leaves no control character and is idempotent.
    #[test]
    fn escaping_is_total_and_idempotent(s in r"(?s).{0,200}") {
        let e = untrusted::escape(&s);
        prop_assert!(!e.chars().any(char::is_control), "{e:?}");
        prop_assert_eq!(untrusted::escape(&e), e.clone());
        let capped = untrusted::line(&s, 50);
        prop_assert!(capped.len() <= 50 + "… (NNNNNNNNNN bytes cut)".len());
    }

    /// Whatever a server put in a message, evidence, a target or a notice, every renderer writes a
    /// report with no control character but the line breaks and colours of its own, and the JUnit,
    /// SARIF and JSON reports are valid documents.
    #[test]
    fn rendered_reports_are_clean_whatever_the_input(
        message in r"(?s).{0,200}",
        evidence in r"(?s).{0,100}",
        address in r"(?s).{0,60}",
        fix_var in r"(?s).{0,60}",
    ) {
        let mut ev = Map::new();
        ev.insert("server".into(), json!(evidence));
        ev.insert(evidence.clone(), json!([evidence, {"k": message}]));
        let result = CheckResult {
            id: "api.version".into(),
            title: "t".into(),
            area: "api".into(),
            severity: Severity::Error,
            status: Status::Fail,
            message: message.clone(),
            evidence: ev,
            fix: Some(format!("run this:\n    {fix_var}\n")),
            docs: "https://example.invalid/docs".into(),
            duration_ms: 1,
        source: "builtin".into(),
            location: None,
        };
        let report = Report::new(
            "check",
            vec![Target { kind: "api".into(), address, source: "--api-url".into() }],
            vec![result],
            false,
            1,
        )
        .with_notices(vec![message])
        .sanitized();
        let catalog = Catalog::builtin();
        for (name, out) in [
            ("text", render::text::render(&report, true)),
            ("json", render::json::render(&report)),
            ("junit", render::junit::render(&report)),
            ("sarif", render::sarif::render(&report, catalog)),
        ] {
            for c in out.chars() {
                prop_assert!(c == '\n' || c == '\x1b' || !c.is_control(), "{name}: {c:?} in {out}");
            }
            // The text renderer's own escapes are SGR colours only.
            for (i, _) in out.match_indices('\x1b') {
                prop_assert!(out[i + 1..].starts_with('['), "{name}: {out}");
            }
            match name {
                "junit" => { prop_assert!(roxmltree::Document::parse(&out).is_ok(), "{out}"); }
                "json" | "sarif" => { prop_assert!(serde_json::from_str::<Value>(&out).is_ok(), "{out}"); }
                _ => {}
            }
        }
    }
}
