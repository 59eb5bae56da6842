//! PostgreSQL's TLS as libpq sets it up: the sslmode's verification, the roots (`sslrootcert`,
//! `~/.postgresql/root.crt`, the system store) and the client identity (`sslcert`/`sslkey`), every
//! file read with a cap.

use std::sync::Arc;

use rustls::{
    ClientConfig,
    client::danger::ServerCertVerifier,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{
    pg_target::{DbTarget, SslMode},
    tls::{ChainOnly, NoVerify, crypto_provider},
};

/// Builds the TLS connector for the target's sslmode, as libpq does: `allow`/`prefer`/`require`
/// encrypt without verifying (but `require` checks the chain as `verify-ca` when a root file
/// exists, libpq's old rule), `verify-ca` checks the chain, `verify-full` also the host name. Roots
/// come from `sslrootcert` (a PEM file, or `system`: the system store), else
/// `~/.postgresql/root.crt`, which verification then needs.
/// `Err`: why TLS cannot be set up (a configuration error of the connection).
pub(super) fn tls_connector(target: &DbTarget) -> Result<MakeRustlsConnect, String> {
    let provider = crypto_provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let root_file_exists = match target.sslrootcert.as_deref() {
        Some("system") => false,
        Some(path) => std::path::Path::new(path).is_file(),
        None => default_root().is_some_and(|p| p.is_file()),
    };
    let verifier: Arc<dyn ServerCertVerifier> = match target.sslmode {
        SslMode::Require if root_file_exists => {
            let roots = root_store(target)?;
            Arc::new(ChainOnly(
                rustls::client::WebPkiServerVerifier::builder_with_provider(
                    roots,
                    provider.clone(),
                )
                .build()
                .map_err(|e| format!("TLS roots: {e}"))?,
            ))
        }
        SslMode::Disable | SslMode::Allow | SslMode::Prefer | SslMode::Require => {
            Arc::new(NoVerify(provider.clone()))
        }
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = root_store(target)?;
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                roots,
                provider.clone(),
            )
            .build()
            .map_err(|e| format!("TLS roots: {e}"))?;
            if target.sslmode == SslMode::VerifyCa {
                Arc::new(ChainOnly(webpki))
            } else {
                webpki
            }
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match client_identity(target)? {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| format!("client certificate: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(config))
}

/// libpq's default root file, `~/.postgresql/root.crt`.
fn default_root() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".postgresql/root.crt"))
}

fn root_store(target: &DbTarget) -> Result<Arc<rustls::RootCertStore>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let file = match target.sslrootcert.as_deref() {
        Some("system") => None,
        Some(path) => Some(std::path::PathBuf::from(path)),
        None => match default_root() {
            Some(p) if p.is_file() => Some(p),
            // As libpq: verification needs roots, and the system's only when asked for.
            p => {
                return Err(format!(
                    "root certificate file {} does not exist: provide it, use the system's trusted \
                     roots with sslrootcert=system, or choose an sslmode that does not verify the \
                     server certificate",
                    p.map(|p| format!("{:?}", p.display().to_string()))
                        .unwrap_or_else(|| "~/.postgresql/root.crt".to_string())
                ));
            }
        },
    };
    match file {
        Some(path) => {
            let pem = read_pem(&path, "sslrootcert")?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    format!(
                        "sslrootcert {} is not a PEM certificate file: {e}",
                        path.display()
                    )
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "sslrootcert {} holds no usable CA certificate",
                    path.display()
                ));
            }
        }
        None => {
            let system = super::tls::native_roots();
            if system.is_empty() {
                return Err("no system CA certificates found; give sslrootcert=<file>".to_string());
            }
            return Ok(system);
        }
    }
    Ok(Arc::new(roots))
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn client_identity(target: &DbTarget) -> Result<Option<Identity>, String> {
    let (cert, key) = match (&target.sslcert, &target.sslkey) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => {
            // libpq's defaults, used only when both exist.
            let Some(home) = std::env::var_os("HOME") else {
                return Ok(None);
            };
            let dir = std::path::PathBuf::from(home).join(".postgresql");
            let (c, k) = (dir.join("postgresql.crt"), dir.join("postgresql.key"));
            if !(c.is_file() && k.is_file()) {
                return Ok(None);
            }
            (c, k)
        }
        _ => {
            return Err("sslcert and sslkey must be given together".to_string());
        }
    };
    let certs = CertificateDer::pem_slice_iter(&read_pem(&cert, "sslcert")?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "sslcert {} is not a PEM certificate file: {e}",
                cert.display()
            )
        })?;
    let key = PrivateKeyDer::from_pem_slice(&read_pem(&key, "sslkey")?)
        .map_err(|e| format!("sslkey {} is not a PEM private key: {e}", key.display()))?;
    Ok(Some((certs, key)))
}

/// A certificate or key file, read with a cap (`sslrootcert=/dev/zero` is refused at once).
fn read_pem(path: &std::path::Path, what: &'static str) -> Result<Vec<u8>, String> {
    crate::bounded::read_file(
        path,
        crate::bounded::MAX_PEM_FILE,
        "certificate or key file",
    )
    .map_err(|e| match e {
        crate::bounded::ReadError::Io { path, message } => {
            format!("cannot read {what} {path}: {message}")
        }
        e => format!("{what}: {e}"),
    })
}
