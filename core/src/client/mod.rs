//! The shared client: one Rust client of etcd's v3 JSON gateway that every
//! Concord binding (Python, browser/Node, C/Perl) is built on. It speaks to
//! Concord and to etcd alike, on native targets (tokio) and in the browser
//! (wasm32, `fetch`).
//!
//! What it does that thin gateway clients leave to their users:
//! - **Failover**: a list of members; one that fails is passed over for a
//!   while; a request that is safe to repeat is repeated on another member
//!   with backoff, all within the deadline of the call ([`Client::with_timeout`]).
//!   Writes are repeated only when the member certainly did not get them.
//! - **Watches that lose nothing** ([`Watcher`]): a broken stream is
//!   reopened on any member from the last delivered revision + 1; the
//!   events of one revision arrive together; a compacted resume point is
//!   the distinct error [`Error::WatchCompacted`].
//! - **Lease keep-alive as a handle** ([`KeepAlive`]): refreshed at a third
//!   of the TTL, retried across members up to the lease's deadline, and the
//!   loss reported the moment it happens.
//! - **Auth**: with [`ClientOptions::user`], a token is fetched at connect
//!   and fetched again whenever a member rejects it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), concord_core::client::Error> {
//! use concord_core::client::{Client, ClientOptions, GetOptions, PutOptions};
//! let client = Client::connect(ClientOptions::new(["127.0.0.1:2379", "127.0.0.1:22379"])).await?;
//! client.put("app/mode", "on", PutOptions::new()).await?;
//! let resp = client.get("app/", GetOptions::new().prefix()).await?;
//! assert_eq!(resp.kvs[0].value, b"on");
//! # Ok(()) }
//! ```

mod auth;
#[cfg(not(target_arch = "wasm32"))]
mod blocking;
mod election;
mod error;
mod kv;
mod lease;
#[cfg(target_arch = "wasm32")]
pub mod post;
mod rt;
mod stream;
#[cfg(not(target_arch = "wasm32"))]
mod tls;
mod transport;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use auth::{permission_type, PermissionType};
#[cfg(not(target_arch = "wasm32"))]
pub use blocking::{BlockingClient, SharedRuntime};
pub use election::Observer;
pub use error::{Error, ErrorKind};
pub use kv::{
    prefix_end, Compare, CompareOn, CompareWith, DeleteOptions, GetOptions, KeyRange, Op, PutOptions, SortOrder,
    SortTarget, Txn,
};
pub use lease::{KeepAlive, LeaseState};
pub use stream::{Elapsed, Feed};
#[cfg(not(target_arch = "wasm32"))]
pub use tls::{Pem, TlsOptions};
pub use watch::{WatchHandle, WatchOptions, Watcher};

use crate::api::etcdserverpb::{
    AuthenticateRequest, AuthenticateResponse, CompactionRequest, CompactionResponse, DeleteRangeResponse,
    MemberListRequest, MemberListResponse, PutResponse, RangeResponse, StatusRequest, StatusResponse, TxnResponse,
};
use rt::Instant;
use transport::{Reply, Retry, Transport};

/// How to reach the cluster.
///
/// ```
/// use std::time::Duration;
/// use concord_core::client::ClientOptions;
/// let opts = ClientOptions::new(["10.0.0.1:2379", "http://10.0.0.2:2379"])
///     .timeout(Duration::from_secs(3))
///     .user("app", "secret");
/// ```
#[derive(Clone, Debug)]
pub struct ClientOptions {
    endpoints: Vec<String>,
    timeout: Duration,
    attempt_timeout: Duration,
    user: Option<(String, String)>,
    #[cfg(not(target_arch = "wasm32"))]
    tls: Option<TlsOptions>,
}

impl ClientOptions {
    /// Members' client URLs (`http://host:port`, or just `host:port`).
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> ClientOptions {
        ClientOptions {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(2),
            user: None,
            #[cfg(not(target_arch = "wasm32"))]
            tls: None,
        }
    }
    /// The deadline of each call, retries included (default 5 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }
    /// How long one member may take to answer before a request that is safe
    /// to repeat goes to the next one (default 2 s).
    pub fn attempt_timeout(mut self, d: Duration) -> Self {
        self.attempt_timeout = d;
        self
    }
    /// Authenticate as this user.
    pub fn user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((name.into(), password.into()));
        self
    }
    /// TLS settings for `https://` members (a CA, a client certificate).
    /// Without them, `https://` members are checked against the platform's
    /// trust store. Native targets only: the browser decides TLS itself.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// A client of a Concord or etcd cluster. Cheap to clone; clones share
/// connections and the token.
#[derive(Clone)]
pub struct Client {
    transport: Arc<Transport>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the members in `opts`. With a user, authenticates now
    /// (a wrong password fails here); otherwise nothing is sent yet.
    pub async fn connect(opts: ClientOptions) -> Result<Client, Error> {
        let client = Client::new(opts)?;
        if client.transport.has_credentials() {
            client.transport.renew_token(None, client.deadline()).await?;
        }
        Ok(client)
    }

    /// A client of the members in `opts`, sending nothing yet: with a user,
    /// it authenticates before its first request (for callers that cannot
    /// wait here, such as a constructor).
    pub fn new(opts: ClientOptions) -> Result<Client, Error> {
        #[cfg(not(target_arch = "wasm32"))]
        let tls = opts.tls.map(|t| t.client_config()).transpose()?;
        #[cfg(target_arch = "wasm32")]
        let tls = None;
        let transport = Transport::new(&opts.endpoints, opts.attempt_timeout, opts.user, tls)?;
        Ok(Client {
            transport: Arc::new(transport),
            timeout: opts.timeout,
        })
    }

    /// This client with another deadline for each call.
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client {
            transport: self.transport.clone(),
            timeout,
        }
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    async fn unary<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
        retry: Retry,
    ) -> Result<Resp, Error> {
        self.transport.unary(path, req, retry, self.deadline()).await
    }

    /// Reads `key` (or a range of keys, see [`GetOptions`]).
    pub async fn get(&self, key: impl Into<Vec<u8>>, opts: GetOptions) -> Result<RangeResponse, Error> {
        self.unary("/v3/kv/range", &opts.build(key), Retry::Always).await
    }

    /// Writes `key` = `value`.
    pub async fn put(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        opts: PutOptions,
    ) -> Result<PutResponse, Error> {
        self.unary("/v3/kv/put", &opts.build(key, value), Retry::IfUnsent).await
    }

    /// Deletes `key` (or a range of keys, see [`DeleteOptions`]).
    pub async fn delete(&self, key: impl Into<Vec<u8>>, opts: DeleteOptions) -> Result<DeleteRangeResponse, Error> {
        self.unary("/v3/kv/deleterange", &opts.build(key), Retry::IfUnsent)
            .await
    }

    /// Runs a transaction.
    pub async fn txn(&self, txn: Txn) -> Result<TxnResponse, Error> {
        self.unary("/v3/kv/txn", &txn.into_pb(), Retry::IfUnsent).await
    }

    /// Compacts the key space up to `revision`; with `physical`, answers
    /// once the space is freed.
    pub async fn compact(&self, revision: i64, physical: bool) -> Result<CompactionResponse, Error> {
        let req = CompactionRequest { revision, physical };
        self.unary("/v3/kv/compaction", &req, Retry::IfUnsent).await
    }

    /// The members of the cluster.
    pub async fn member_list(&self) -> Result<MemberListResponse, Error> {
        self.unary("/v3/cluster/member/list", &MemberListRequest::default(), Retry::Always)
            .await
    }

    /// The status of the member that answers.
    pub async fn status(&self) -> Result<StatusResponse, Error> {
        self.unary("/v3/maintenance/status", &StatusRequest::default(), Retry::Always)
            .await
    }

    /// Checks a user name and password and returns the token. A client
    /// built with [`ClientOptions::user`] does this itself.
    pub async fn authenticate(
        &self,
        name: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<AuthenticateResponse, Error> {
        let req = AuthenticateRequest {
            name: name.into(),
            password: password.into(),
        };
        self.unary("/v3/auth/authenticate", &req, Retry::Always).await
    }

    /// Opens a streaming request (watch), retrying on any member without
    /// a deadline of its own beyond `deadline`.
    async fn open_stream(&self, path: &str, body: &Bytes, deadline: Instant) -> Result<reqwest::Response, Error> {
        match self.transport.call(path, body, Retry::Always, true, deadline).await? {
            Reply::Stream(r) => Ok(r),
            Reply::Body(_) => unreachable!("streaming calls return the response unread"),
        }
    }
}
