//! The client handle: made from endpoints and options, shared by threads.

use std::ffi::c_char;
use std::time::Duration;

use concord_core::client::{BlockingClient, ClientOptions, Pem, TlsOptions};

use crate::error::{ConcordError, ConcordStatus};
use crate::guard::{guard, opt_str, out, Failure};

/// A client of a Concord or etcd cluster. Thread-safe.
pub struct ConcordClient {
    pub(crate) inner: BlockingClient,
}

/// How to connect; every field may be NULL / 0 for the default.
#[repr(C)]
pub struct ConcordOptions {
    /// Authenticate as this user (with `password`).
    pub user: *const c_char,
    pub password: *const c_char,
    /// Deadline of each call in seconds, retries included (0: 5 s).
    pub timeout_seconds: f64,
    /// PEM file of the CA to trust for https:// endpoints.
    pub ca_file: *const c_char,
    /// PEM files of a client certificate and its key.
    pub cert_file: *const c_char,
    pub key_file: *const c_char,
}

fn options(endpoints: Vec<String>, o: Option<&ConcordOptions>) -> Result<ClientOptions, Failure> {
    let mut opts = ClientOptions::new(endpoints);
    let Some(o) = o else { return Ok(opts) };
    if o.timeout_seconds > 0.0 && o.timeout_seconds.is_finite() {
        opts = opts.timeout(Duration::from_secs_f64(o.timeout_seconds));
    }
    if let Some(user) = opt_str(o.user, "user")? {
        opts = opts.user(user, opt_str(o.password, "password")?.unwrap_or_default());
    }
    let ca = opt_str(o.ca_file, "ca_file")?;
    let cert = opt_str(o.cert_file, "cert_file")?;
    let key = opt_str(o.key_file, "key_file")?;
    if ca.is_some() || cert.is_some() || key.is_some() {
        let mut tls = TlsOptions::new();
        if let Some(ca) = ca {
            tls = tls.ca(Pem::File(ca.into()));
        }
        match (cert, key) {
            (Some(c), Some(k)) => tls = tls.identity(Pem::File(c.into()), Pem::File(k.into())),
            (None, None) => {}
            _ => {
                return Err(Failure::Client(concord_core::client::Error::InvalidArgument(
                    "cert_file and key_file go together".into(),
                )))
            }
        }
        opts = opts.tls(tls);
    }
    Ok(opts)
}

/// Connects to the members in `endpoints` (`n` of them, each `host:port`
/// or a URL); with a user, authenticates now. `options` may be NULL.
#[no_mangle]
pub extern "C" fn concord_client_new(
    endpoints: *const *const c_char,
    n: usize,
    options: *const ConcordOptions,
    client: *mut *mut ConcordClient,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        if endpoints.is_null() && n > 0 {
            return Err(Failure::Null("endpoints"));
        }
        let mut list = Vec::with_capacity(n);
        for i in 0..n {
            // SAFETY: `endpoints` holds `n` pointers by contract.
            let p = unsafe { *endpoints.add(i) };
            list.push(opt_str(p, "endpoint")?.ok_or(Failure::Null("endpoint"))?);
        }
        // SAFETY: NULL or a valid `concord_options` by contract.
        let o = unsafe { options.as_ref() };
        let inner = BlockingClient::connect(self::options(list, o)?)?;
        out(client, Box::into_raw(Box::new(ConcordClient { inner })), "client")
    })
}

/// Frees a client (NULL is fine). Watches and keep-alives made from it
/// keep running until they are freed.
#[no_mangle]
pub extern "C" fn concord_client_free(client: *mut ConcordClient) {
    let _ = guard(std::ptr::null_mut(), || {
        crate::guard::free(client);
        Ok(())
    });
}
