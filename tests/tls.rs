//! sslmode over rustls against a real PostgreSQL with TLS on (certificates made here with rcgen).

mod support;

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
