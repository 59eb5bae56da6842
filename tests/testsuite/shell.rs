//! The command as shells and kubectl know it: completion scripts, man pages kept in sync with the
//! clap definitions (docs/man/), and the kubectl plugin's name in help and messages.

use crate::support;

use std::collections::BTreeMap;

use support::doctor;

fn stdout(args: &[&str]) -> String {
    let out = doctor().args(args).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn completion_scripts_name_every_command_and_bash_reads_its_own() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = stdout(&["completions", shell]);
        for word in [
            "check",
            "preflight",
            "fix",
            "bundle",
            "explain",
            "database-url",
        ] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
        assert!(
            !script.contains("gen-man"),
            "{shell}: a hidden command completes"
        );
    }
    // bash parses its script; zsh and fish theirs when installed.
    let dir = tempfile::tempdir().unwrap();
    for (shell, check) in [("bash", "-n"), ("zsh", "-n"), ("fish", "--no-execute")] {
        let Ok(found) = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {shell}")])
            .output()
        else {
            continue;
        };
        if !found.status.success() {
            assert_ne!(shell, "bash", "bash is on every machine this runs on");
            continue;
        }
        let path = dir.path().join(shell);
        std::fs::write(&path, stdout(&["completions", shell])).unwrap();
        let out = std::process::Command::new(shell)
            .arg(check)
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {out:?}");
    }
    // An unknown shell is a usage error.
    let out = doctor().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values"));
}

#[test]
fn man_pages_are_generated_from_the_definitions_and_in_sync() {
    let root = env!("CARGO_MANIFEST_DIR");
    let checked_in = std::path::Path::new(root).join("docs/man");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let _ = std::fs::remove_dir_all(&checked_in);
        stdout(&["gen-man", &checked_in.display().to_string()]);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let said = stdout(&["gen-man", &dir.path().display().to_string()]);
    assert!(said.contains("prefect-doctor-check.1"), "{said}");
    let read = |d: &std::path::Path| -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(d)
            .map(|it| {
                it.filter_map(Result::ok)
                    .map(|e| {
                        (
                            e.file_name().to_string_lossy().into_owned(),
                            std::fs::read(e.path()).unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let fresh = read(dir.path());
    assert!(fresh.len() >= 9, "{:?}", fresh.keys());
    let page = String::from_utf8_lossy(&fresh["prefect-doctor-bundle.1"]).into_owned();
    assert!(page.contains(".TH prefect-doctor-bundle 1"), "{page}");
    assert!(page.contains("max\\-size"), "{page}");
    assert!(
        read(&checked_in) == fresh,
        "docs/man is out of date: run `UPDATE_DOCS=1 cargo test --test testsuite shell::`"
    );
}

/// The binary linked as kubectl's plugin `kubectl-prefect_doctor`, run with `args`.
fn as_plugin(args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("kubectl-prefect_doctor");
    std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("prefect-doctor"), &link).unwrap();
    let out = std::process::Command::new(&link)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn as_a_kubectl_plugin_it_names_itself_as_typed() {
    let (code, help, _) = as_plugin(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        help.contains("Usage: kubectl prefect-doctor [OPTIONS] <COMMAND>"),
        "{help}"
    );
    let (code, help, _) = as_plugin(&["check", "--help"]);
    assert_eq!(code, 0);
    assert!(
        help.contains("Usage: kubectl prefect-doctor check"),
        "{help}"
    );
    // A usage error, and the program's own messages.
    let (code, _, err) = as_plugin(&["check", "--no-such-flag"]);
    assert_eq!(code, 2);
    assert!(err.contains("Usage: kubectl prefect-doctor check"), "{err}");
    let (code, _, err) = as_plugin(&["explain", "no.such-check"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("kubectl prefect-doctor: unknown check id")
            && err.contains("`kubectl prefect-doctor list` shows every check"),
        "{err}"
    );
    // Run by its own name, it is itself.
    let out = doctor()
        .args(["explain", "no.such-check"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("prefect-doctor: unknown check id"), "{err}");
}

/// kubectl's client minor version (0 when it cannot be read).
fn kubectl_minor() -> u32 {
    std::process::Command::new("kubectl")
        .args(["version", "--client", "-o", "json"])
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|v| {
            v["clientVersion"]["minor"]
                .as_str()
                .map(|m| m.trim_end_matches('+').parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

fn on_path(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What bash's completion offers for `line` (the words typed; the last the one being completed),
/// by driving the function the script registers, as readline does.
fn bash_offers(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let driver = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n\
         COMP_LINE=\"${{COMP_WORDS[*]}}\"\nCOMP_POINT=${{#COMP_LINE}}\n\
         f=$(complete -p prefect-doctor | sed -E 's/.*-F ([^ ]+).*/\\1/')\n\
         \"$f\" prefect-doctor \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" ")
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "-c", &driver])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Completion as a person meets it, in real shells: subcommands, a subcommand's flags, and the
/// values of -o and --color. bash is on every machine; fish and kubectl where installed (.ci/run
/// installs fish; kubectl comes with the machine).
#[test]
fn completion_completes_in_real_shells() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("prefect-doctor.bash");
    std::fs::write(&script, stdout(&["completions", "bash"])).unwrap();
    let has = |got: &[String], want: &[&str]| want.iter().all(|w| got.iter().any(|g| g == w));
    let got = bash_offers(&script, &["prefect-doctor", "ch"]);
    assert_eq!(got, ["check"], "subcommand");
    let got = bash_offers(&script, &["prefect-doctor", "check", "--data"]);
    assert_eq!(got, ["--database-url"], "a subcommand's flag");
    let got = bash_offers(&script, &["prefect-doctor", "check", "-o", ""]);
    assert!(
        has(&got, &["text", "json", "junit", "sarif", "prometheus"]),
        "{got:?}"
    );
    let got = bash_offers(&script, &["prefect-doctor", "fix", "--color", ""]);
    assert!(has(&got, &["auto", "always", "never"]), "{got:?}");
    let got = bash_offers(&script, &["prefect-doctor", "bundle", "--max"]);
    assert_eq!(got, ["--max-size"], "{got:?}");

    if on_path("fish") {
        let script = dir.path().join("prefect-doctor.fish");
        std::fs::write(&script, stdout(&["completions", "fish"])).unwrap();
        let fish = |line: &str| -> Vec<String> {
            let out = std::process::Command::new("fish")
                .args([
                    "--no-config",
                    "-c",
                    &format!("source '{}'; complete -C '{line}'", script.display()),
                ])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.split('\t').next().unwrap_or("").to_string())
                .collect()
        };
        assert!(has(&fish("prefect-doctor ch"), &["check"]));
        assert!(has(
            &fish("prefect-doctor check --data"),
            &["--database-url"]
        ));
        let got = fish("prefect-doctor check -o ");
        assert!(
            has(&got, &["text", "json", "junit", "sarif", "prometheus"]),
            "{got:?}"
        );
        let got = fish("prefect-doctor preflight --color ");
        assert!(has(&got, &["auto", "always", "never"]), "{got:?}");
    } else {
        assert!(std::env::var_os("CI").is_none(), ".ci/run installs fish");
    }

    // kubectl's own completion of the plugin, through kubectl_complete-prefect_doctor (kubectl 1.26
    // and later complete plugins; Debian's kubernetes-client is older).
    if on_path("kubectl") && kubectl_minor() >= 26 {
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let doctor = assert_cmd::cargo::cargo_bin("prefect-doctor");
        for name in ["kubectl-prefect_doctor", "kubectl_complete-prefect_doctor"] {
            std::os::unix::fs::symlink(&doctor, bin.join(name)).unwrap();
        }
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let kubectl = |words: &[&str]| -> (Vec<String>, String) {
            let out = std::process::Command::new("kubectl")
                .arg("__complete")
                .args(words)
                .env("PATH", &path)
                .env("KUBECONFIG", "/nonexistent")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let words = text
                .lines()
                .filter(|l| !l.starts_with(':'))
                .map(|l| l.split('\t').next().unwrap_or("").to_string())
                .collect();
            let directive = text
                .lines()
                .find(|l| l.starts_with(':'))
                .unwrap_or("")
                .to_string();
            (words, directive)
        };
        let (got, directive) = kubectl(&["prefect-doctor", "ch"]);
        assert_eq!(got, ["check"]);
        assert_eq!(directive, ":4", "no file names after a subcommand");
        let (got, _) = kubectl(&["prefect-doctor", "check", "-o", ""]);
        assert_eq!(got, ["text", "json", "junit", "sarif", "prometheus"]);
        let (got, _) = kubectl(&["prefect-doctor", "check", "--only", "tenant"]);
        assert_eq!(got, ["tenant.exists"]);
        let (got, _) = kubectl(&["prefect-doctor", "explain", "db.pa"]);
        assert_eq!(got, ["db.password"]);
        let (_, directive) = kubectl(&["prefect-doctor", "check", "--kubeconfig", ""]);
        assert_eq!(directive, ":0", "file names for a file flag");
    }
}
