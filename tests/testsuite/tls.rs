//! sslmode over rustls against a real PostgreSQL with TLS on (certificates made here with rcgen).

use crate::support;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use support::{
    check,
    pg::{PgOptions, PgServer},
    prefect::{APP_USER, CANARY, Seed, seed},
};

struct Pki {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
}

/// A self-signed CA with its own name (webpki matches issuers by name).
fn new_ca(common_name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A CA and a server certificate for the name `localhost` only (not 127.0.0.1).
fn pki() -> Pki {
    let ca = new_ca("prefect-doctor test CA");
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        server_cert_pem: server.pem(),
        server_key_pem: server_key.serialize_pem(),
    }
}

fn tls_server(pki: &Pki) -> PgServer {
    let pg = PgServer::start_with(PgOptions {
        settings: vec![
            ("ssl".into(), "on".into()),
            ("ssl_cert_file".into(), "server.crt".into()),
            ("ssl_key_file".into(), "server.key".into()),
        ],
        data_files: vec![
            ("server.crt".into(), pki.server_cert_pem.clone()),
            ("server.key".into(), pki.server_key_pem.clone()),
        ],
        ..PgOptions::default()
    });
    seed(&pg, &Seed::healthy("prefect"));
    pg
}

fn url(host: &str, port: u16, query: &str) -> String {
    format!("postgres://{APP_USER}:{CANARY}@{host}:{port}/prefect?{query}")
}

#[test]
fn sslmodes_against_a_tls_server() {
    let pki = pki();
    let pg = tls_server(&pki);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let ca = ca.display().to_string();
    let other_ca = dir.path().join("other.pem");
    std::fs::write(&other_ca, new_ca("some other CA").pem()).unwrap();
    let other_ca = other_ca.display().to_string();
    let connect = |host: &str, query: &str| {
        let url = url(host, pg.port, query);
        let args = [
            "--database-url",
            &url,
            "--only",
            "db.reachable",
            "--only",
            "db.password",
        ];
        check(&args, &[CANARY])
    };

    // require: encrypted, certificate not checked (as libpq).
    let run = connect("127.0.0.1", "sslmode=require");
    assert_eq!(run.status("db.password"), "pass", "{}", run.text);
    assert!(
        run.message("db.reachable").contains("(TLS on)"),
        "{}",
        run.message("db.reachable")
    );

    // verify-full with the right CA and the certificate's name.
    let q = format!("sslmode=verify-full&sslrootcert={ca}");
    let run = connect("localhost", &q);
    assert_eq!(run.status("db.password"), "pass", "{}", run.text);

    // verify-full by IP: the certificate does not name 127.0.0.1.
    let run = connect("127.0.0.1", &q);
    assert_eq!(run.status("db.reachable"), "fail");
    assert_eq!(
        run.result("db.reachable")["evidence"]["failure"],
        "tls",
        "{}",
        run.message("db.reachable")
    );
    assert!(
        run.message("db.reachable")
            .to_lowercase()
            .contains("not valid for"),
        "{}",
        run.message("db.reachable")
    );

    // verify-ca checks the chain only, so the IP is fine.
    let q_ca = format!("sslmode=verify-ca&sslrootcert={ca}");
    let run = connect("127.0.0.1", &q_ca);
    assert_eq!(run.status("db.password"), "pass", "{}", run.text);

    // A CA that did not sign the server's certificate.
    let q_other = format!("sslmode=verify-full&sslrootcert={other_ca}");
    let run = connect("localhost", &q_other);
    assert_eq!(run.status("db.reachable"), "fail");
    assert_eq!(run.result("db.reachable")["evidence"]["failure"], "tls");
    assert!(
        run.message("db.reachable").contains("UnknownIssuer"),
        "{}",
        run.message("db.reachable")
    );

    // A CA file that is not there: a clear configuration error.
    let run = connect(
        "localhost",
        "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    );
    assert_eq!(run.status("db.reachable"), "fail");
    assert!(
        run.message("db.reachable")
            .contains("cannot read sslrootcert /nonexistent/ca.pem"),
        "{}",
        run.message("db.reachable")
    );
}

#[test]
fn require_against_a_server_without_tls() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let run = check(
        &[
            "--database-url",
            &url("127.0.0.1", pg.port, "sslmode=require"),
            "--only",
            "db.reachable",
        ],
        &[CANARY],
    );
    assert_eq!(run.status("db.reachable"), "fail");
    assert_eq!(
        run.result("db.reachable")["evidence"]["failure"],
        "tls",
        "{}",
        run.message("db.reachable")
    );
    // prefer falls back to plain text, as libpq does.
    let run = check(
        &[
            "--database-url",
            &url("127.0.0.1", pg.port, "sslmode=prefer"),
            "--only",
            "db.password",
        ],
        &[CANARY],
    );
    assert_eq!(run.status("db.password"), "pass");
}

/// TLS set up as libpq sets it up, libpq the oracle (the newest, psycopg's, and Debian's psql for
/// what libpq 15 knows): for each sslmode, root file and `sslrootcert`, the doctor connects (with
/// TLS or not) where libpq does, or both refuse.
#[test]
fn tls_is_set_up_as_libpq_sets_it_up() {
    let pki = pki();
    let pg = tls_server(&pki);
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    };
    let other = new_ca("some other CA").pem();
    let ca = file("ca.pem", &pki.ca_pem);
    let other_ca = file("other.pem", &other);
    // Homes: none with a root file, one whose ~/.postgresql/root.crt is the server's CA, one another's.
    let plain = dir.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    file("right/.postgresql/root.crt", &pki.ca_pem);
    file("wrong/.postgresql/root.crt", &other);
    let (right, wrong) = (dir.path().join("right"), dir.path().join("wrong"));
    let target = |host: &str, query: &str| Some(url(host, pg.port, query));
    let cert_file = |f: &str| vec![("SSL_CERT_FILE", f.to_string())];
    let cases: Vec<support::libpq::OracleCase> = vec![
        (
            "disable",
            target("127.0.0.1", "sslmode=disable"),
            vec![],
            &plain,
        ),
        ("prefer", target("127.0.0.1", ""), vec![], &plain),
        (
            "require, no root file",
            target("127.0.0.1", "sslmode=require"),
            vec![],
            &plain,
        ),
        (
            "require checks the chain when ~/.postgresql/root.crt exists",
            target("127.0.0.1", "sslmode=require"),
            vec![],
            &wrong,
        ),
        (
            "require with the right root.crt, by address",
            target("127.0.0.1", "sslmode=require"),
            vec![],
            &right,
        ),
        (
            "require with sslrootcert of another CA",
            target(
                "127.0.0.1",
                &format!("sslmode=require&sslrootcert={other_ca}"),
            ),
            vec![],
            &plain,
        ),
        (
            "verify-full without any root file",
            target("localhost", "sslmode=verify-full"),
            vec![],
            &plain,
        ),
        (
            "verify-full with ~/.postgresql/root.crt",
            target("localhost", "sslmode=verify-full"),
            vec![],
            &right,
        ),
        (
            "verify-full with sslrootcert",
            target(
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
            ),
            vec![],
            &plain,
        ),
        (
            "verify-full by address",
            target(
                "127.0.0.1",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
            ),
            vec![],
            &plain,
        ),
        (
            "verify-full: host names the certificate, hostaddr is where",
            target(
                "localhost",
                &format!("hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}"),
            ),
            vec![],
            &plain,
        ),
        (
            "verify-full: a host the certificate does not name, whatever hostaddr",
            target(
                "db.invalid",
                &format!("hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}"),
            ),
            vec![],
            &plain,
        ),
        (
            "verify-ca by address",
            target("127.0.0.1", "sslmode=verify-ca"),
            vec![],
            &right,
        ),
        (
            "PGSSLROOTCERT and PGSSLMODE",
            target("localhost", ""),
            vec![
                ("PGSSLROOTCERT", ca.clone()),
                ("PGSSLMODE", "verify-full".into()),
            ],
            &plain,
        ),
        (
            "sslrootcert=system: verify-full by default",
            target("localhost", "sslrootcert=system"),
            cert_file(&ca),
            &plain,
        ),
        (
            "sslrootcert=system: not the server's CA",
            target("localhost", "sslrootcert=system"),
            cert_file(&other_ca),
            &plain,
        ),
        (
            "sslrootcert=system with a weak sslmode",
            target("localhost", "sslrootcert=system&sslmode=require"),
            cert_file(&ca),
            &plain,
        ),
        (
            "require_auth read inside TLS: refused",
            target("127.0.0.1", "sslmode=require&require_auth=password,md5"),
            vec![],
            &plain,
        ),
        (
            "require_auth read inside TLS: allowed",
            target("127.0.0.1", "sslmode=require&require_auth=scram-sha-256"),
            vec![],
            &plain,
        ),
        (
            "channel_binding=require over TLS",
            target("127.0.0.1", "sslmode=require&channel_binding=require"),
            vec![],
            &plain,
        ),
    ];
    // What libpq 15 reads otherwise ("system" as a file's name).
    let since_16 = [
        "sslrootcert=system: verify-full by default",
        "sslrootcert=system: not the server's CA",
        "sslrootcert=system with a weak sslmode",
        "require_auth read inside TLS: refused",
        "require_auth read inside TLS: allowed",
    ];
    let differ = support::libpq::libpq_differences(&cases, &since_16, CANARY);
    assert!(differ.is_empty(), "{differ:#?}");
}
