//! TLS on the client port (and, once members talk, the peer port) with
//! rustls: certificates and keys from PEM files, client certificates
//! verified against a CA bundle, and the common name of a verified client
//! certificate read out for use as the user name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

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

/// TLS files for one port, as the flags give them.
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
}

fn file_err(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
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

impl TlsFiles {
    /// Whether a certificate and key are given.
    pub fn is_set(&self) -> bool {
        self.cert.is_some() && self.key.is_some()
    }

    /// The rustls server configuration: ALPN h2 and http/1.1 (gRPC and
    /// the gateway share the port); with a CA bundle, client certificates
    /// are verified — required with `client_cert_auth`, else optional.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let (Some(cert), Some(key)) = (&self.cert, &self.key) else {
            return Err(TlsError::Config("a certificate and a key file are both needed".into()));
        };
        let chain = certs(cert)?;
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_err(key, e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match &self.trusted_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for c in certs(ca)? {
                    roots.add(c).map_err(|e| file_err(ca, e))?;
                }
                let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let v = if self.client_cert_auth {
                    v
                } else {
                    v.allow_unauthenticated()
                };
                builder.with_client_cert_verifier(v.build().map_err(|e| TlsError::Config(e.to_string()))?)
            }
            None if self.client_cert_auth => {
                return Err(TlsError::Config(
                    "client certificate auth needs a trusted CA file".into(),
                ))
            }
            None => builder.with_no_client_auth(),
        };
        let mut cfg = builder
            .with_single_cert(chain, key_der)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

impl TlsFiles {
    /// The rustls client configuration members use to reach each other:
    /// peers' certificates verified against the CA bundle, this member's
    /// certificate presented as the client certificate.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, TlsError> {
        let (Some(cert), Some(key), Some(ca)) = (&self.cert, &self.key, &self.trusted_ca) else {
            return Err(TlsError::Config(
                "https:// peer URLs need --peer-cert-file, --peer-key-file and --peer-trusted-ca-file".into(),
            ));
        };
        let mut roots = RootCertStore::empty();
        for c in certs(ca)? {
            roots.add(c).map_err(|e| file_err(ca, e))?;
        }
        let chain = certs(cert)?;
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_err(key, e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key_der)
            .map_err(|e| TlsError::Config(e.to_string()))
    }
}

/// The common name of a (verified) certificate.
pub fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}
