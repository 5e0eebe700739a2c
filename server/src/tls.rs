//! TLS on the client and peer ports with rustls: certificates and keys
//! from PEM files (or made at start with `--auto-tls`), client certificates
//! verified against a CA bundle, a revocation list, allowed common names and
//! host names, the TLS versions and TLS 1.2 cipher suites etcd's flags
//! choose, and the common name of a verified client certificate read out
//! for use as the user name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme};
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM item.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The pieces do not fit together (e.g. a key that is not the certificate's).
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn file_err(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn config_err(e: impl ToString) -> TlsError {
    TlsError::Config(e.to_string())
}

/// TLS 1.2 cipher suites by Go's names (etcd's `--cipher-suites`), those
/// rustls implements.
const SUITES: [(&str, SupportedCipherSuite); 6] = [
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ring::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// Go's other TLS 1.2 suites (CBC, RC4, 3DES, RSA key exchange): valid
/// names that rustls does not implement, so they are not offered.
const WEAKER_SUITES: [&str; 16] = [
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

/// TLS 1.3's suites by Go's names: always on, as in Go (etcd's list
/// does not choose them).
const TLS13_SUITES: [&str; 3] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// A TLS version flag's value: 0 for TLS1.0 … 3 for TLS1.3.
fn version_rank(flag: &str, value: &str, default: u8) -> Result<u8, TlsError> {
    match value.trim() {
        "" => Ok(default),
        "TLS1.0" => Ok(0),
        "TLS1.1" => Ok(1),
        "TLS1.2" => Ok(2),
        "TLS1.3" => Ok(3),
        other => Err(config_err(format!(
            "--{flag}: unknown TLS version {other:?} (TLS1.2 or TLS1.3)"
        ))),
    }
}

/// The TLS versions and cipher suites every port uses (etcd's
/// `--tls-min-version`, `--tls-max-version`, `--cipher-suites`).
#[derive(Clone, Debug)]
pub struct TlsPolicy {
    versions: Vec<&'static SupportedProtocolVersion>,
    provider: Arc<CryptoProvider>,
}

impl Default for TlsPolicy {
    /// TLS 1.2 and 1.3, rustls' default suites.
    fn default() -> Self {
        TlsPolicy {
            versions: rustls::DEFAULT_VERSIONS.to_vec(),
            provider: Arc::new(ring::default_provider()),
        }
    }
}

impl TlsPolicy {
    /// The policy the flags ask for, and notes for the log on what was
    /// given but is not offered (older versions, suites rustls lacks).
    pub fn new(min: &str, max: &str, cipher_suites: &str) -> Result<(TlsPolicy, Vec<String>), TlsError> {
        let mut notes = Vec::new();
        let (min_rank, max_rank) = (
            version_rank("tls-min-version", min, 2)?,
            version_rank("tls-max-version", max, 3)?,
        );
        if max_rank < 2 {
            return Err(config_err(format!(
                "--tls-max-version {max}: Concord speaks TLS 1.2 and 1.3 only"
            )));
        }
        if min_rank > max_rank {
            return Err(config_err(format!(
                "--tls-min-version {min} is above --tls-max-version {max}"
            )));
        }
        if min_rank < 2 {
            notes.push(format!(
                "--tls-min-version {min}: TLS 1.0 and 1.1 are not offered; the lowest version is TLS1.2"
            ));
        }
        let mut versions = Vec::new();
        if min_rank <= 2 {
            versions.push(&rustls::version::TLS12);
        }
        if max_rank == 3 {
            versions.push(&rustls::version::TLS13);
        }
        let mut provider = ring::default_provider();
        let names: Vec<&str> = cipher_suites
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        if !names.is_empty() {
            if min_rank == 3 {
                return Err(config_err(
                    "--cipher-suites cannot be set when only TLS 1.3 is enabled (its suites are fixed)",
                ));
            }
            let mut chosen: Vec<SupportedCipherSuite> = Vec::new();
            let mut weaker = Vec::new();
            for name in names {
                if let Some((_, suite)) = SUITES.iter().find(|(n, _)| *n == name) {
                    chosen.push(*suite);
                } else if WEAKER_SUITES.contains(&name) {
                    weaker.push(name);
                } else if !TLS13_SUITES.contains(&name) {
                    return Err(config_err(format!("--cipher-suites: unknown cipher suite {name:?}")));
                }
            }
            if !weaker.is_empty() {
                notes.push(format!(
                    "--cipher-suites: {} not offered (CBC, RC4, 3DES and RSA key exchange are not implemented)",
                    weaker.join(", ")
                ));
            }
            if chosen.is_empty() {
                return Err(config_err(
                    "--cipher-suites names no suite Concord implements (ECDHE with AES-GCM or ChaCha20-Poly1305)",
                ));
            }
            // TLS 1.3's suites stay, after the chosen TLS 1.2 ones.
            chosen.extend(
                provider
                    .cipher_suites
                    .iter()
                    .filter(|s| s.version() == &rustls::version::TLS13),
            );
            provider.cipher_suites = chosen;
        }
        Ok((
            TlsPolicy {
                versions,
                provider: Arc::new(provider),
            },
            notes,
        ))
    }

    fn server_builder(&self) -> Result<rustls::ConfigBuilder<ServerConfig, rustls::WantsVerifier>, TlsError> {
        ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&self.versions)
            .map_err(config_err)
    }

    fn client_builder(&self) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, TlsError> {
        rustls::ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&self.versions)
            .map_err(config_err)
    }
}

/// TLS settings for one port, as the flags give them.
#[derive(Clone, Debug, Default)]
pub struct TlsFiles {
    /// The server's certificate chain.
    pub cert: Option<PathBuf>,
    /// The server's private key.
    pub key: Option<PathBuf>,
    /// CA bundle for client certificates.
    pub trusted_ca: Option<PathBuf>,
    /// Require a verified client certificate.
    pub client_cert_auth: bool,
    /// Revoked certificates (PEM or DER), refused as client certificates.
    pub crl: Option<PathBuf>,
    /// A client certificate must carry one of these common names (none: any).
    pub allowed_cns: Vec<String>,
    /// A client certificate must be valid for this host name.
    pub allowed_hostname: Option<String>,
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no certificate in file"));
    }
    Ok(certs)
}

/// A revocation list file, PEM (`X509 CRL` blocks) or DER.
fn crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, e))?;
    let pem = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))?;
    Ok(if pem.is_empty() {
        vec![CertificateRevocationListDer::from(bytes)]
    } else {
        pem
    })
}

fn roots(ca: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in certs(ca)? {
        roots.add(c).map_err(|e| file_err(ca, e))?;
    }
    Ok(roots)
}

impl TlsFiles {
    /// Whether a certificate and key are given.
    pub fn is_set(&self) -> bool {
        self.cert.is_some() && self.key.is_some()
    }

    /// The client certificate verifier: the CA, the revocation list, then
    /// the allowed names.
    fn client_verifier(&self, ca: &Path, policy: &TlsPolicy) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
        let mut v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), Arc::clone(&policy.provider));
        if let Some(crl) = &self.crl {
            // As etcd: the presented certificate's serial is checked.
            v = v
                .with_crls(crls(crl)?)
                .only_check_end_entity_revocation()
                .allow_unknown_revocation_status();
        }
        if !self.client_cert_auth {
            v = v.allow_unauthenticated();
        }
        let inner = v.build().map_err(config_err)?;
        if self.allowed_cns.is_empty() && self.allowed_hostname.is_none() {
            return Ok(inner);
        }
        let hostname = match &self.allowed_hostname {
            Some(h) => {
                Some(ServerName::try_from(h.clone()).map_err(|e| config_err(format!("allowed host name {h:?}: {e}")))?)
            }
            None => None,
        };
        Ok(Arc::new(AllowedNames {
            inner,
            cns: self.allowed_cns.clone(),
            hostname,
        }))
    }

    /// The rustls server configuration: ALPN h2 and http/1.1 (gRPC and
    /// the gateway share the port); with a CA bundle, client certificates
    /// are verified — required with `client_cert_auth`, else optional.
    pub fn server_config(&self, policy: &TlsPolicy) -> Result<Arc<ServerConfig>, TlsError> {
        let (Some(cert), Some(key)) = (&self.cert, &self.key) else {
            return Err(config_err("a certificate and a key file are both needed"));
        };
        let chain = certs(cert)?;
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_err(key, e))?;
        let builder = policy.server_builder()?;
        let builder = match &self.trusted_ca {
            Some(ca) => builder.with_client_cert_verifier(self.client_verifier(ca, policy)?),
            None if self.client_cert_auth => return Err(config_err("client certificate auth needs a trusted CA file")),
            None if self.crl.is_some() || !self.allowed_cns.is_empty() || self.allowed_hostname.is_some() => {
                return Err(config_err(
                    "a revocation list or allowed names need client certificates: give the trusted CA file",
                ))
            }
            None => builder.with_no_client_auth(),
        };
        let mut cfg = builder.with_single_cert(chain, key_der).map_err(config_err)?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// The rustls client configuration members use to reach each other:
    /// peers' certificates verified against the CA bundle (or, with
    /// `--peer-auto-tls` and no CA, not verified, as etcd does), this
    /// member's certificate presented as the client certificate.
    pub fn client_config(&self, policy: &TlsPolicy, auto_tls: bool) -> Result<rustls::ClientConfig, TlsError> {
        let (Some(cert), Some(key)) = (&self.cert, &self.key) else {
            return Err(config_err(
                "https:// peer URLs need --peer-cert-file, --peer-key-file and --peer-trusted-ca-file (or --peer-auto-tls)",
            ));
        };
        let chain = certs(cert)?;
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_err(key, e))?;
        let builder = policy.client_builder()?;
        let builder = match &self.trusted_ca {
            Some(ca) => builder.with_root_certificates(roots(ca)?),
            None if auto_tls => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyPeerCertificate(
                    policy.provider.signature_verification_algorithms,
                ))),
            None => {
                return Err(config_err(
                    "https:// peer URLs need --peer-trusted-ca-file (or --peer-auto-tls)",
                ))
            }
        };
        builder.with_client_auth_cert(chain, key_der).map_err(config_err)
    }
}

/// A client certificate verifier that also wants a common name from a
/// list, or validity for a host name (etcd's `--peer-cert-allowed-cn`,
/// `--peer-cert-allowed-hostname`, `--client-cert-allowed-hostname`).
#[derive(Debug)]
struct AllowedNames {
    inner: Arc<dyn ClientCertVerifier>,
    cns: Vec<String>,
    hostname: Option<ServerName<'static>>,
}

impl ClientCertVerifier for AllowedNames {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        if !self.cns.is_empty() {
            let cn = common_name(end_entity);
            if !cn.as_ref().is_some_and(|cn| self.cns.contains(cn)) {
                tracing::warn!(common_name = ?cn, allowed = ?self.cns, "client certificate refused: common name not allowed");
                return Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                ));
            }
        }
        if let Some(host) = &self.hostname {
            let valid = webpki::EndEntityCert::try_from(end_entity)
                .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?
                .verify_is_valid_for_subject_name(host);
            if valid.is_err() {
                tracing::warn!(hostname = ?host, "client certificate refused: not valid for the allowed host name");
                return Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName,
                ));
            }
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `--peer-auto-tls` without a CA: a peer's self-signed certificate is
/// taken as it is (etcd skips verification there too); the handshake's
/// signatures are still checked, so the peer holds the certificate's key.
#[derive(Debug)]
struct AnyPeerCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyPeerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `--auto-tls` / `--peer-auto-tls`: a self-signed certificate and key in
/// `dir` (`cert.pem`, `key.pem`), valid for `hosts` for `years`; made once
/// and reused at later starts, as etcd keeps its fixtures.
pub fn self_signed(dir: &Path, hosts: &[String], years: u32) -> Result<(PathBuf, PathBuf), TlsError> {
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    let mut params = rcgen::CertificateParams::new(hosts.to_vec()).map_err(config_err)?;
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "concord");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365 * i64::from(years.max(1)));
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = rcgen::KeyPair::generate().map_err(config_err)?;
    let cert = params.self_signed(&key).map_err(config_err)?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, cert.pem()).map_err(|e| file_err(&cert_path, e))?;
    tracing::info!(cert = %cert_path.display(), hosts = ?hosts, years, "made a self-signed certificate (auto TLS)");
    Ok((cert_path, key_path))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| file_err(path, e))?;
    f.write_all(bytes).map_err(|e| file_err(path, e))
}

/// What to tell an operator about a failed handshake, beyond the error.
///
/// A client certificate made as many guides make it (`openssl x509 -req`
/// without extensions) is X.509 v1, which rustls refuses; etcd (Go) takes it.
pub fn handshake_hint(error: &dyn std::fmt::Display) -> &'static str {
    let text = error.to_string();
    if text.contains("UnsupportedCertVersion") {
        "the client certificate is X.509 v1; Concord needs v3: sign it with extensions, e.g. \
         `openssl x509 -req ... -extfile <(printf 'extendedKeyUsage=clientAuth')`"
    } else if text.contains("UnknownIssuer") {
        "the certificate is not signed by the trusted CA file"
    } else if text.contains("peer sent no certificates") {
        "a client certificate is required (--client-cert-auth)"
    } else {
        ""
    }
}

/// The common name of a (verified) certificate.
pub fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suites(p: &TlsPolicy) -> Vec<String> {
        p.provider
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect()
    }

    #[test]
    fn versions_follow_etcds_flags() {
        let (p, notes) = TlsPolicy::new("", "", "").unwrap();
        assert_eq!(p.versions.len(), 2);
        assert!(notes.is_empty());
        let (p, _) = TlsPolicy::new("TLS1.3", "", "").unwrap();
        assert_eq!(p.versions, [&rustls::version::TLS13]);
        let (p, _) = TlsPolicy::new("", "TLS1.2", "").unwrap();
        assert_eq!(p.versions, [&rustls::version::TLS12]);
        let (p, notes) = TlsPolicy::new("TLS1.0", "", "").unwrap();
        assert_eq!(p.versions.len(), 2);
        assert!(notes[0].contains("not offered"), "{notes:?}");
        for (min, max, says) in [
            ("TLS1.3", "TLS1.2", "above"),
            ("", "TLS1.1", "1.2 and 1.3 only"),
            ("SSL3", "", "unknown TLS version"),
        ] {
            let e = TlsPolicy::new(min, max, "").unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn cipher_suites_by_gos_names() {
        let (p, notes) = TlsPolicy::new(
            "",
            "",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,TLS_AES_128_GCM_SHA256",
        )
        .unwrap();
        let s = suites(&p);
        assert_eq!(s[0], "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
        assert!(s[1..].iter().all(|n| n.starts_with("TLS13_")), "{s:?}");
        assert!(
            notes[0].contains("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA not offered"),
            "{notes:?}"
        );
        let e = TlsPolicy::new("", "", "TLS_FAKE").unwrap_err().to_string();
        assert!(e.contains("unknown cipher suite \"TLS_FAKE\""), "{e}");
        let e = TlsPolicy::new("", "", "TLS_RSA_WITH_AES_128_CBC_SHA")
            .unwrap_err()
            .to_string();
        assert!(e.contains("names no suite"), "{e}");
        let e = TlsPolicy::new("TLS1.3", "", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
            .unwrap_err()
            .to_string();
        assert!(e.contains("only TLS 1.3"), "{e}");
    }

    #[test]
    fn self_signed_certificates_are_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let (cert, key) = self_signed(dir.path(), &hosts, 1).unwrap();
        let first = std::fs::read(&cert).unwrap();
        let files = TlsFiles {
            cert: Some(cert.clone()),
            key: Some(key.clone()),
            ..TlsFiles::default()
        };
        files.server_config(&TlsPolicy::default()).unwrap();
        files.client_config(&TlsPolicy::default(), true).unwrap();
        assert!(files.client_config(&TlsPolicy::default(), false).is_err());
        self_signed(dir.path(), &hosts, 1).unwrap();
        assert_eq!(std::fs::read(&cert).unwrap(), first, "reused");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
