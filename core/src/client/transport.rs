//! Requests to the JSON gateway of a list of members: picking a member,
//! skipping the ones that failed lately, retrying what is safe to retry on
//! another member with backoff, all within the caller's deadline; and the
//! token, renewed when a member rejects it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::rt::{self, Instant};
use super::Error;
use crate::api::error::{Code, EtcdError};
use crate::api::etcdserverpb::{AuthenticateRequest, AuthenticateResponse};

/// The TLS set-up of native clients (the browser has its own).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type TlsConfig = rustls::ClientConfig;
#[cfg(target_arch = "wasm32")]
pub(crate) type TlsConfig = ();

/// How long a member that failed is passed over while others remain.
const DOWN_FOR: Duration = Duration::from_secs(1);
/// The pause after every member failed once, doubled each round up to the cap.
const BACKOFF_START: Duration = Duration::from_millis(50);
const BACKOFF_CAP: Duration = Duration::from_secs(1);

/// Whether a request may be sent again after a failure that may have
/// happened after the member received it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads, keep-alives and the like: repeating them changes nothing.
    Always,
    /// Writes: repeated only when it is certain the member never got them
    /// (the connection could not be made, or the member said it has no leader).
    IfUnsent,
}

/// A member's gateway address and when it last failed.
struct Endpoint {
    base: String,
    down_until: Mutex<Option<Instant>>,
}

/// What an exchange returns: a whole body, or a streaming response.
pub(crate) enum Reply {
    Body(Bytes),
    Stream(reqwest::Response),
}

pub(crate) struct Transport {
    http: reqwest::Client,
    endpoints: Vec<Endpoint>,
    preferred: AtomicUsize,
    attempt_timeout: Duration,
    credentials: Option<(String, String)>,
    token: Mutex<Option<String>>,
}

/// The body of a gateway error answer (`{"error", "message", "code"}`).
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: i32,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// An error inside a streamed answer (`{"error": {"grpc_code", "message", …}}`).
#[derive(Deserialize)]
pub(crate) struct StreamError {
    #[serde(default)]
    grpc_code: i32,
    #[serde(default)]
    message: String,
}

impl StreamError {
    pub(crate) fn into_etcd(self) -> EtcdError {
        EtcdError::from_wire(self.grpc_code, &self.message)
    }
}

/// One line of a streamed answer: `{"result": …}` or `{"error": …}`.
#[derive(Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
pub(crate) struct StreamLine<T> {
    pub(crate) result: Option<T>,
    pub(crate) error: Option<StreamError>,
}

/// The gRPC code a bare HTTP status stands for (grpc-gateway's mapping, reversed).
fn code_of_status(status: u16) -> Code {
    match status {
        400 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        409 => Code::Aborted,
        412 => Code::FailedPrecondition,
        429 => Code::ResourceExhausted,
        499 => Code::Cancelled,
        501 => Code::Unimplemented,
        502..=503 => Code::Unavailable,
        504 => Code::DeadlineExceeded,
        _ => Code::Unknown,
    }
}

/// The error a non-200 answer carries.
pub(crate) fn error_of(status: u16, body: &[u8]) -> EtcdError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) if b.message.is_some() || b.error.is_some() => {
            let code = if b.code != 0 {
                b.code
            } else {
                code_of_status(status) as i32
            };
            EtcdError::from_wire(code, &b.message.or(b.error).unwrap_or_default())
        }
        _ => EtcdError::Other {
            code: code_of_status(status),
            message: format!("HTTP {status}: {}", String::from_utf8_lossy(body).trim()),
        },
    }
}

/// Errors that say "this member cannot serve now, another may".
fn member_unavailable(e: &EtcdError, retry: Retry) -> bool {
    match retry {
        // Refused before proposing: certain not to have been applied.
        Retry::IfUnsent => matches!(e, EtcdError::NoLeader),
        Retry::Always => e.code() == Code::Unavailable,
    }
}

fn token_rejected(e: &EtcdError) -> bool {
    matches!(e, EtcdError::InvalidAuthToken | EtcdError::AuthOldRevision)
}

/// Why one attempt failed before an answer: the message, and whether the
/// request certainly never reached the member.
struct Failed {
    message: String,
    unsent: bool,
}

/// Whether the request certainly never reached the member.
fn unsent(e: &reqwest::Error) -> bool {
    #[cfg(not(target_arch = "wasm32"))]
    {
        e.is_connect()
    }
    #[cfg(target_arch = "wasm32")]
    {
        let _ = e;
        false
    }
}

/// `host:port` or a URL, as a base URL without the trailing slash.
fn base_url(endpoint: &str) -> Result<String, Error> {
    let e = endpoint.trim().trim_end_matches('/');
    if e.is_empty() {
        return Err(Error::InvalidArgument("empty endpoint".into()));
    }
    if e.starts_with("http://") || e.starts_with("https://") {
        Ok(e.to_string())
    } else if e.contains("://") {
        Err(Error::InvalidArgument(format!(
            "endpoint {e}: only http:// and https:// are supported"
        )))
    } else {
        Ok(format!("http://{e}"))
    }
}

impl Transport {
    pub(crate) fn new(
        endpoints: &[String],
        attempt_timeout: Duration,
        credentials: Option<(String, String)>,
        tls: Option<TlsConfig>,
    ) -> Result<Transport, Error> {
        if endpoints.is_empty() {
            return Err(Error::InvalidArgument("no endpoints given".into()));
        }
        let endpoints = endpoints
            .iter()
            .map(|e| {
                Ok(Endpoint {
                    base: base_url(e)?,
                    down_until: Mutex::new(None),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let builder = reqwest::Client::builder();
        #[cfg(not(target_arch = "wasm32"))]
        let builder = builder
            .tcp_nodelay(true)
            .connect_timeout(attempt_timeout)
            .pool_idle_timeout(Duration::from_secs(30));
        #[cfg(not(target_arch = "wasm32"))]
        // Always our own rustls set-up: reqwest has no crypto provider of its own.
        let builder = builder.tls_backend_preconfigured(match tls {
            Some(config) => config,
            None => super::TlsOptions::new().client_config()?,
        });
        #[cfg(target_arch = "wasm32")]
        let _ = tls;
        let http = builder.build().map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Ok(Transport {
            http,
            endpoints,
            preferred: AtomicUsize::new(0),
            attempt_timeout,
            credentials,
            token: Mutex::new(None),
        })
    }

    /// The token sent with requests, if any.
    pub(crate) fn token(&self) -> Option<String> {
        self.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// The order to try members in: the one that answered last first, then
    /// the others; members that failed lately go last.
    fn order(&self) -> Vec<usize> {
        let n = self.endpoints.len();
        let start = self.preferred.load(Ordering::Relaxed) % n;
        let now = Instant::now();
        let (mut up, mut down): (Vec<usize>, Vec<usize>) = (0..n).map(|i| (start + i) % n).partition(|&i| {
            let d = self.endpoints[i].down_until.lock().unwrap_or_else(|e| e.into_inner());
            d.is_none_or(|t| t <= now)
        });
        up.append(&mut down);
        up
    }

    fn mark_down(&self, i: usize) {
        *self.endpoints[i].down_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + DOWN_FOR);
    }

    fn mark_up(&self, i: usize) {
        *self.endpoints[i].down_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.preferred.store(i, Ordering::Relaxed);
    }

    /// One POST to `url`, given up at `deadline` (`None`). Unary calls in
    /// a JavaScript host with a [`super::post`] function installed go
    /// through it; everything else through reqwest.
    async fn attempt(
        &self,
        url: &str,
        body: &Bytes,
        token: Option<&str>,
        stream: bool,
        deadline: Instant,
    ) -> Option<Result<(u16, Reply), Failed>> {
        #[cfg(target_arch = "wasm32")]
        if !stream {
            if let Some(post) = super::post::installed() {
                let fut = post(url.to_string(), body.clone(), token.map(str::to_string));
                return rt::until(deadline, fut).await.map(|r| {
                    r.map(|(status, b)| (status, Reply::Body(b))).map_err(|e| Failed {
                        message: e.message,
                        unsent: e.unsent,
                    })
                });
            }
        }
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(t) = token {
            req = req.header("authorization", t);
        }
        let attempt = async move {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            if stream && status == 200 {
                return Ok((status, Reply::Stream(resp)));
            }
            Ok::<_, reqwest::Error>((status, Reply::Body(resp.bytes().await?)))
        };
        rt::until(deadline, attempt).await.map(|r| {
            r.map_err(|e| Failed {
                unsent: unsent(&e),
                message: e.to_string(),
            })
        })
    }

    /// POSTs `body` to `path` on some member and returns its 200 answer,
    /// failing over and backing off as `retry` allows, until `deadline`.
    /// With `stream`, a 200 answer is returned unread.
    pub(crate) async fn exchange(
        &self,
        path: &str,
        body: &Bytes,
        token: Option<&str>,
        retry: Retry,
        stream: bool,
        deadline: Instant,
    ) -> Result<Reply, Error> {
        let mut last = String::from("no attempt finished");
        let mut backoff = BACKOFF_START;
        loop {
            for i in self.order() {
                if Instant::now() >= deadline {
                    return Err(Error::DeadlineExceeded(last));
                }
                // Repeatable calls (and the opening of a watch) get an answer
                // from each member in time or move on; a write, or a stream
                // whose first answer may be long in coming (etcd's gateway
                // sends nothing before an election has a leader), waits.
                let bounded = retry == Retry::Always;
                let attempt_deadline = if bounded {
                    deadline.min(Instant::now() + self.attempt_timeout)
                } else {
                    deadline
                };
                let url = format!("{}{}", self.endpoints[i].base, path);
                match self.attempt(&url, body, token, stream, attempt_deadline).await {
                    None => {
                        last = format!("{url}: no answer in time");
                        tracing::debug!(%url, "no answer in time");
                        if !bounded {
                            return Err(Error::DeadlineExceeded(last));
                        }
                        self.mark_down(i);
                    }
                    Some(Err(failed)) => {
                        last = format!("{url}: {}", failed.message);
                        tracing::debug!(%url, error = %failed.message, "request failed");
                        self.mark_down(i);
                        if retry == Retry::IfUnsent && !failed.unsent {
                            return Err(Error::Indeterminate(last));
                        }
                    }
                    Some(Ok((200, reply))) => {
                        self.mark_up(i);
                        return Ok(reply);
                    }
                    Some(Ok((status, reply))) => {
                        let bytes = match reply {
                            Reply::Body(b) => b,
                            Reply::Stream(_) => Bytes::new(),
                        };
                        let e = error_of(status, &bytes);
                        if !member_unavailable(&e, retry) {
                            return Err(Error::Etcd(e));
                        }
                        last = format!("{url}: {e}");
                        self.mark_down(i);
                    }
                }
            }
            if !rt::sleep_until_at_most(backoff, deadline).await {
                return Err(Error::DeadlineExceeded(last));
            }
            backoff = (backoff * 2).min(BACKOFF_CAP);
        }
    }

    /// An exchange with the current token; when a member rejects the token
    /// as invalid or stale, a new one is fetched once and the request repeated.
    pub(crate) async fn call(
        &self,
        path: &str,
        body: &Bytes,
        retry: Retry,
        stream: bool,
        deadline: Instant,
    ) -> Result<Reply, Error> {
        if self.credentials.is_some() && self.token().is_none() {
            self.renew_token(None, deadline).await?;
        }
        let token = self.token();
        match self
            .exchange(path, body, token.as_deref(), retry, stream, deadline)
            .await
        {
            Err(Error::Etcd(e)) if token_rejected(&e) && self.credentials.is_some() => {
                tracing::debug!(error = %e, "token rejected; authenticating again");
                self.renew_token(token, deadline).await?;
                let token = self.token();
                self.exchange(path, body, token.as_deref(), retry, stream, deadline)
                    .await
            }
            other => other,
        }
    }

    /// A unary request: `req` as JSON to `path`, the answer read as `Resp`.
    pub(crate) async fn unary<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
        retry: Retry,
        deadline: Instant,
    ) -> Result<Resp, Error> {
        let body = Bytes::from(serde_json::to_vec(req).map_err(|e| Error::InvalidArgument(e.to_string()))?);
        match self.call(path, &body, retry, false, deadline).await? {
            Reply::Body(b) => serde_json::from_slice(&b).map_err(|e| Error::Decode(format!("{path}: {e}"))),
            Reply::Stream(_) => unreachable!("unary calls read the whole body"),
        }
    }

    /// Authenticates with the configured credentials and keeps the token,
    /// unless another task already replaced `stale`.
    pub(crate) async fn renew_token(&self, stale: Option<String>, deadline: Instant) -> Result<(), Error> {
        if self.token() != stale {
            return Ok(());
        }
        let Some((name, password)) = self.credentials.clone() else {
            return Ok(());
        };
        let req = AuthenticateRequest { name, password };
        let body = Bytes::from(serde_json::to_vec(&req).map_err(|e| Error::InvalidArgument(e.to_string()))?);
        let Reply::Body(b) = self
            .exchange("/v3/auth/authenticate", &body, None, Retry::Always, false, deadline)
            .await?
        else {
            unreachable!("unary calls read the whole body")
        };
        let resp: AuthenticateResponse =
            serde_json::from_slice(&b).map_err(|e| Error::Decode(format!("authenticate: {e}")))?;
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(resp.token);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_become_base_urls() {
        assert_eq!(base_url("127.0.0.1:2379").unwrap(), "http://127.0.0.1:2379");
        assert_eq!(base_url("https://a:1/").unwrap(), "https://a:1");
        assert!(base_url("unix://x").is_err());
        assert!(base_url(" ").is_err());
    }

    #[test]
    fn gateway_errors_are_read() {
        let e = error_of(
            400,
            br#"{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}"#,
        );
        assert_eq!(e, EtcdError::EmptyKey);
        let e = error_of(503, b"<html>bad gateway</html>");
        assert_eq!(e.code(), Code::Unavailable);
        let e = error_of(404, br#"{"code":5,"message":"Not Found"}"#);
        assert_eq!(e.code(), Code::NotFound);
    }

    #[test]
    fn only_unapplied_writes_fail_over() {
        assert!(member_unavailable(&EtcdError::NoLeader, Retry::IfUnsent));
        assert!(!member_unavailable(&EtcdError::Timeout, Retry::IfUnsent));
        assert!(member_unavailable(&EtcdError::Timeout, Retry::Always));
        assert!(!member_unavailable(&EtcdError::Compacted, Retry::Always));
    }

    #[test]
    fn failed_members_go_last() {
        let t = Transport::new(
            &["a:1".into(), "b:2".into(), "c:3".into()],
            Duration::from_secs(1),
            None,
            None,
        )
        .unwrap();
        assert_eq!(t.order(), vec![0, 1, 2]);
        t.mark_down(0);
        assert_eq!(t.order(), vec![1, 2, 0]);
        t.mark_up(2);
        assert_eq!(t.order(), vec![2, 1, 0]);
    }
}
