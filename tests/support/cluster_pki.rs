//! The control plane's certificates: its CA, the API server's serving certificate, client
//! certificates for the tests' users, and one from another CA.

/// The cluster CA, the API server's certificate (127.0.0.1 and localhost) and the service-account
/// signing key.
pub struct Pki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub sa_key_pem: String,
    pub sa_public_pem: String,
    /// A client certificate and key of user `alice` (group `dev`), signed by the cluster CA.
    pub alice: (String, String),
    /// The same, signed by a CA the API server does not trust.
    pub mallory: (String, String),
}

impl Pki {
    pub fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "prefect-doctor test cluster CA");
        let ca =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca");
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "kubernetes".to_string()])
                .expect("params");
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kube-apiserver");
        let cert = params.signed_by(&key, &ca).expect("cert");
        let sa = KeyPair::generate().expect("sa key");
        Pki {
            ca_pem: ca.pem(),
            server_cert_pem: cert.pem(),
            server_key_pem: key.serialize_pem(),
            sa_key_pem: sa.serialize_pem(),
            sa_public_pem: sa.public_key_pem(),
            alice: client_cert(&ca, "alice"),
            mallory: {
                let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                params
                    .distinguished_name
                    .push(rcgen::DnType::CommonName, "an untrusted CA");
                let other = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key"))
                    .expect("ca");
                client_cert(&other, "mallory")
            },
        }
    }
}

/// A client certificate (PEM) and its key for user `name` in group `dev`, signed by `ca`.
fn client_cert(ca: &rcgen::CertifiedIssuer<'_, rcgen::KeyPair>, name: &str) -> (String, String) {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "dev");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, ca).expect("client cert");
    (cert.pem(), key.serialize_pem())
}
