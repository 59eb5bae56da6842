//! Hostile local input: devices, huge and special files, deep --set expressions, durations, and
//! stdout that cannot be written.

use super::*;

#[test]
fn devices_and_huge_files_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'#'; 2 * 1024 * 1024]).unwrap();
    let big = big.display().to_string();
    for (args, needle) in [
        (vec!["check", "--config", "/dev/zero"], "not a regular file"),
        (
            vec!["check", "--kubeconfig", "/dev/zero"],
            "not a regular file",
        ),
        (
            vec!["check", "--kubeconfig", big.as_str()],
            "larger than 1 MiB",
        ),
        (vec!["check", "--config", big.as_str()], "larger than 1 MiB"),
        (
            vec!["preflight", "--config", dir.path().to_str().unwrap()],
            "not a regular file",
        ),
    ] {
        let (code, _, err, _) = run_once(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // A certificate path that is a device fails the connection at once, as a configuration error
    // (the client certificate under require: verify-full would first ask for roots).
    for key in ["sslrootcert", "sslcert"] {
        let (mode, extra) = if key == "sslcert" {
            ("require", "&sslkey=/dev/zero")
        } else {
            ("verify-full", "")
        };
        let url =
            format!("postgres://u:{CANARY}@127.0.0.1:1/db?sslmode={mode}&{key}=/dev/zero{extra}");
        let run = check(
            &["--database-url", &url, "--only", "db.reachable"],
            &[CANARY],
        );
        assert!(
            run.message("db.reachable").contains("not a regular file"),
            "{}",
            run.message("db.reachable")
        );
    }
    // A kubeconfig naming a device as its CA file.
    let kc = kubeconfig(
        dir.path(),
        "https://127.0.0.1:1",
        "    certificate-authority: /dev/zero\n",
        " {}",
    );
    let (code, _, err, _) = run_once(&["check", "--kubeconfig", &kc]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/dev/zero is not a regular file"), "{err}");
}

#[test]
fn deep_wide_and_huge_set_expressions_are_clear_usage_errors() {
    let deep = format!("{}=1", vec!["a"; 10_000].join("."));
    let (code, _, err, _) = run_once(&["preflight", "--set", &deep]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nests deeper than 64 levels"), "{err}");
    let huge = format!("a={}", "x".repeat(100_000));
    let (code, _, err, _) = run_once(&["preflight", "--set", &huge]);
    assert_eq!(code, 2);
    assert!(err.contains("at most 64 KiB"), "{err}");
    let wide_lists = (0..20)
        .map(|i| format!("l{i}[65536]=1"))
        .collect::<Vec<_>>()
        .join(",");
    let (code, _, err, _) = run_once(&["preflight", "--set", &wide_lists]);
    assert_eq!(code, 2);
    assert!(err.contains("list entries"), "{err}");
    // 12,000 assignments in one flag are fine (each location names its own assignment).
    let wide = vec!["ui.apolloApiUrl=http://x/graphql"; 1_500].join(",");
    let run = run_sub("preflight", &["--set", &wide], &[]);
    assert_eq!(run.status("values.parse"), "pass");
    let many = vec!["a=1"; 12_000].join(",");
    let (code, out, err, _) = run_once(&["preflight", "-o", "json", "--set", &many]);
    assert!(code == 0 || code == 1, "{err}");
    assert!(out.len() < 200_000, "{} bytes", out.len());
}

#[test]
fn durations_are_capped_with_a_message() {
    for args in [
        &["check", "--timeout", "18446744073709551615s"][..],
        &["check", "--timeout", "18446744073709551615"],
        &["check", "--wait", "9223372036854775807s"],
        &["check", "--timeout", "11m"],
        &["check", "--wait", "2days"],
    ] {
        let (code, _, err, _) = run_once(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("longer than the maximum"), "{args:?}: {err}");
        assert!(!err.contains("panic"), "{err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "timeout = \"18446744073709551615s\"\n").unwrap();
    let (code, _, err, _) = run_once(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("longer than the maximum of 10m"), "{err}");
}

#[test]
fn write_errors_on_stdout() {
    let bin = env!("CARGO_BIN_EXE_prefect-doctor");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = std::process::Command::new(bin)
        .arg("list")
        .env("HOME", "/nonexistent")
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write to standard output"));
    // A closed pipe (`| head`) is not an error.
    let mut child = std::process::Command::new(bin)
        .arg("gen-docs")
        .env("HOME", "/nonexistent")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mkfifo(path: &std::path::Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(ok.success());
}

fn is_fifo(path: &std::path::Path) -> bool {
    use std::os::unix::fs::FileTypeExt as _;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

/// Every file the program opens, for reading or writing, never blocks on a FIFO and never replaces a
/// special file: a FIFO with no reader or writer is refused at once, with what it is; one that a
/// process reads is written into; a character device is written as it is; a socket is refused.
#[test]
fn special_files_are_never_waited_on_nor_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = d.join("fifo");
    mkfifo(&fifo);
    let f = fifo.display().to_string();
    let dead = "postgres://u@127.0.0.1:9/x";
    // Reads: each refused at once, naming what it is.
    for args in [
        vec!["check", "--config", &f, "--database-url", dead],
        vec!["check", "--checks", &f, "--database-url", dead],
        vec!["check", "--kubeconfig", &f],
        vec!["check", "--from", &f],
        vec!["preflight", "-f", &f],
        vec!["lint-checks", &f],
    ] {
        let started = std::time::Instant::now();
        let (code, out, err, _) = run_once(&args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(
            err.contains("FIFO") || err.contains("not a regular file"),
            "{args:?}: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} waited"
        );
        assert!(is_fifo(&fifo));
    }
    // Writes to a FIFO nobody reads: refused at once, the FIFO left a FIFO.
    for args in [
        vec![
            "bundle",
            "--output-file",
            &f,
            "--database-url",
            dead,
            "--timeout",
            "1s",
        ],
        vec![
            "check",
            "--report",
            &format!("junit={f}"),
            "--database-url",
            dead,
            "--timeout",
            "1s",
        ],
        vec![
            "fix",
            "--apply",
            "--yes",
            "--journal",
            &f,
            "--database-url",
            dead,
            "--timeout",
            "1s",
        ],
    ] {
        let started = std::time::Instant::now();
        let (code, out, err, _) = run_once(&args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(
            err.contains("FIFO that no process is reading"),
            "{args:?}: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{args:?} waited"
        );
        assert!(is_fifo(&fifo), "{args:?} replaced the FIFO");
    }
    // A FIFO that a process reads: the bundle goes through it, and it stays a FIFO.
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(&fifo).unwrap())
    };
    std::thread::sleep(Duration::from_millis(200));
    let (code, out, err, _) = run_once(&[
        "bundle",
        "--output-file",
        &f,
        "--database-url",
        dead,
        "--timeout",
        "1s",
    ]);
    let got = reader.join().unwrap();
    assert!(code == 1 || code == 0, "{out}{err}");
    assert_eq!(
        &got[..2],
        &[0x1f, 0x8b],
        "a gzip stream came through the FIFO"
    );
    assert!(is_fifo(&fifo));
    // A character device is written as it is (and /dev/null stays /dev/null).
    let (code, out, err, _) = run_once(&[
        "bundle",
        "--output-file",
        "/dev/null",
        "--database-url",
        dead,
        "--timeout",
        "1s",
    ]);
    assert!(code == 1 || code == 0, "{out}{err}");
    {
        use std::os::unix::fs::FileTypeExt as _;
        assert!(
            std::fs::metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }
    // A socket: refused, left as it is.
    let sock = d.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let s = sock.display().to_string();
    let (code, _, err, _) = run_once(&[
        "bundle",
        "--output-file",
        &s,
        "--database-url",
        dead,
        "--timeout",
        "1s",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("it is a socket"), "{err}");
    {
        use std::os::unix::fs::FileTypeExt as _;
        assert!(
            std::fs::symlink_metadata(&sock)
                .unwrap()
                .file_type()
                .is_socket()
        );
    }
}
