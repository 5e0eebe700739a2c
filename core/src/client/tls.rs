//! TLS for native clients: `https://` endpoints verified against a CA the
//! caller gives (PEM file or bytes) or, without one, the platform's trust
//! store; optionally a client certificate and key (for members run with
//! `--client-cert-auth`). rustls on the ring provider: no OpenSSL.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::Error;

/// Where a PEM document comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pem {
    /// A file to read when the client is built.
    File(std::path::PathBuf),
    /// The document itself.
    Bytes(Vec<u8>),
}

impl Pem {
    fn read(&self, what: &str) -> Result<Vec<u8>, Error> {
        match self {
            Pem::File(p) => {
                std::fs::read(p).map_err(|e| Error::InvalidArgument(format!("{what} {}: {e}", p.display())))
            }
            Pem::Bytes(b) => Ok(b.clone()),
        }
    }
}

/// TLS settings of a client.
///
/// ```
/// use concord_core::client::{ClientOptions, Pem, TlsOptions};
/// let tls = TlsOptions::new()
///     .ca(Pem::File("/etc/concord/ca.pem".into()))
///     .identity(Pem::File("client.pem".into()), Pem::File("client-key.pem".into()));
/// let opts = ClientOptions::new(["https://10.0.0.1:2379"]).tls(tls);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    ca: Option<Pem>,
    identity: Option<(Pem, Pem)>,
}

impl TlsOptions {
    /// Server certificates checked against the platform's trust store, no
    /// client certificate.
    pub fn new() -> TlsOptions {
        TlsOptions::default()
    }
    /// Trust only the CA certificates in this PEM document.
    pub fn ca(mut self, pem: Pem) -> Self {
        self.ca = Some(pem);
        self
    }
    /// Present this certificate chain and private key (PEM) to the server.
    pub fn identity(mut self, cert: Pem, key: Pem) -> Self {
        self.identity = Some((cert, key));
        self
    }

    /// The rustls configuration these settings describe.
    pub(crate) fn client_config(&self) -> Result<rustls::ClientConfig, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let bad = |e: rustls::Error| Error::InvalidArgument(format!("TLS: {e}"));
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(bad)?;
        let builder = match &self.ca {
            Some(pem) => {
                let bytes = pem.read("CA file")?;
                let mut roots = rustls::RootCertStore::empty();
                for cert in certs(&bytes, "CA")? {
                    roots
                        .add(cert)
                        .map_err(|e| Error::InvalidArgument(format!("CA certificate: {e}")))?;
                }
                builder.with_root_certificates(roots)
            }
            None => {
                let verifier = rustls_platform_verifier::Verifier::new(provider)
                    .map_err(|e| Error::InvalidArgument(format!("TLS: platform trust store: {e}")))?;
                builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier))
            }
        };
        let mut config = match &self.identity {
            Some((cert, key)) => {
                let chain = certs(&cert.read("certificate file")?, "client certificate")?;
                let key = PrivateKeyDer::from_pem_slice(&key.read("key file")?)
                    .map_err(|e| Error::InvalidArgument(format!("client key: {e}")))?;
                builder.with_client_auth_cert(chain, key).map_err(bad)?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// Every certificate in a PEM document; at least one.
fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::InvalidArgument(format!("{what}: {e}")))?;
    if certs.is_empty() {
        return Err(Error::InvalidArgument(format!("{what}: no PEM certificate found")));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pem_is_a_clear_error() {
        let e = TlsOptions::new().ca(Pem::Bytes(b"not pem".to_vec())).client_config();
        assert!(matches!(e, Err(Error::InvalidArgument(m)) if m.contains("no PEM certificate")));
        let e = TlsOptions::new()
            .ca(Pem::File("/nonexistent/ca.pem".into()))
            .client_config();
        assert!(matches!(e, Err(Error::InvalidArgument(m)) if m.contains("/nonexistent/ca.pem")));
    }

    #[test]
    fn platform_roots_without_a_ca() {
        TlsOptions::new().client_config().unwrap();
    }
}
