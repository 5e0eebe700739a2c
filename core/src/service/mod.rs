//! The one service layer: gRPC and the JSON gateway both call it with the
//! typed `api` messages, so etcd's rules are decided here once. Reads are
//! served from the applied state; writes are checked (etcd's stateless
//! checks, request size, space quota), proposed to the log, and answered
//! after apply, with the member's header filled in.

mod auth;
mod cluster;
mod election;
mod kv;
mod lease;
mod maintenance;
mod v2;
mod watch;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::api::concordpb::log_request::Request as LogOp;
use crate::api::concordpb::LogRequest;
use crate::api::error::EtcdError;
use crate::api::etcdserverpb::{Member, MemberListResponse, ResponseHeader, StatusResponse};
use crate::auth::token::Tokens;
use crate::raft::{Node, State};
use crate::state_machine::WriteResponse;

pub use auth::{AuthLimit, Caller, ADDR_LIMIT, USER_LIMIT};
pub use maintenance::Mismatch;
pub use v2::{unix_now, V2Credentials, MAX_TTL_SECS};
pub use watch::WatchSession;

/// The etcd API version Concord implements, as `/version` and
/// `Maintenance.Status` report it (clients pick API paths from it).
pub const ETCD_API_VERSION: &str = "3.4.0";
/// The cluster version reported by `/version`.
pub const ETCD_CLUSTER_VERSION: &str = "3.4.0";

/// Limits and identity the service enforces and reports.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// The member's human-readable name.
    pub name: String,
    /// URLs peers reach this member at.
    pub peer_urls: Vec<String>,
    /// URLs clients reach this member at.
    pub client_urls: Vec<String>,
    /// Most operations in one txn (`--max-txn-ops`).
    pub max_txn_ops: usize,
    /// Largest request, encoded (`--max-request-bytes`).
    pub max_request_bytes: usize,
    /// Backend size above which writes are refused (`--quota-backend-bytes`).
    pub quota_backend_bytes: u64,
    /// bcrypt's cost for new passwords (`--bcrypt-cost`).
    pub bcrypt_cost: u32,
    /// Most leases kept at once (`--max-leases`); grants past it are
    /// refused.
    pub max_leases: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            name: "default".into(),
            peer_urls: vec!["http://localhost:2380".into()],
            client_urls: vec!["http://localhost:2379".into()],
            max_txn_ops: 128,
            max_request_bytes: 1536 * 1024,
            quota_backend_bytes: 2 * 1024 * 1024 * 1024,
            bcrypt_cost: 10,
            max_leases: 1_000_000,
        }
    }
}

/// etcd's KV, Watch, Lease, Maintenance and Cluster semantics over one member.
pub struct EtcdService {
    node: Node,
    state: Arc<State>,
    cfg: ServiceConfig,
    /// When each lease expires, by this member's clock. Only the member
    /// that decides expiry (the leader) keeps them; they are not replicated.
    deadlines: Mutex<HashMap<i64, Instant>>,
    /// Auth tokens issued and checked by this member.
    tokens: Arc<Tokens>,
    /// Failed authentications, per user and per source address.
    /// Failed authentications by (user, source address), and by source.
    auth_limits: (auth::Limiter<(String, Option<IpAddr>)>, auth::Limiter<IpAddr>),
    /// Whether this member led at the last expiry round.
    leading: Mutex<bool>,
    /// Sends keep-alives to the leader (replicated members).
    forwarder: Mutex<Option<Arc<dyn Forwarder>>>,
}

/// Hands requests only the leader may serve to the leader.
pub trait Forwarder: Send + Sync {
    /// Renews lease `id` on member `leader`; the TTL it answers.
    fn keep_alive(
        &self,
        leader: u64,
        id: i64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<i64, EtcdError>> + Send + '_>>;

    /// Asks member `leader` for a lease's time to live.
    fn time_to_live(
        &self,
        leader: u64,
        req: crate::api::etcdserverpb::LeaseTimeToLiveRequest,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<crate::api::etcdserverpb::LeaseTimeToLiveResponse, EtcdError>>
                + Send
                + '_,
        >,
    >;

    /// Asks member `member` for its HashKV at `revision` (corruption checks).
    fn hash_kv(
        &self,
        member: u64,
        revision: i64,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<crate::api::etcdserverpb::HashKvResponse, EtcdError>> + Send + '_>,
    >;
}

impl EtcdService {
    /// A service over a started member, with simple tokens of 300 s.
    pub fn new(node: Node, cfg: ServiceConfig) -> Self {
        EtcdService::with_tokens(node, cfg, Tokens::simple(Duration::from_secs(300)))
    }

    /// A service over a started member, issuing `tokens`.
    ///
    /// Every lease already granted gets a full TTL from now, as etcd gives
    /// leases when a new leader takes over.
    pub fn with_tokens(node: Node, cfg: ServiceConfig, tokens: Tokens) -> Self {
        let state = Arc::clone(node.state());
        let now = Instant::now();
        let deadlines = state.with(|sm| {
            sm.lessor
                .iter()
                .map(|(id, l)| (id, now + Duration::from_secs(l.ttl.max(0) as u64)))
                .collect()
        });
        EtcdService {
            node,
            state,
            cfg,
            deadlines: Mutex::new(deadlines),
            tokens: Arc::new(tokens),
            auth_limits: (auth::Limiter::new(USER_LIMIT), auth::Limiter::new(ADDR_LIMIT)),
            leading: Mutex::new(true),
            forwarder: Mutex::new(None),
        }
    }

    /// Sets how keep-alives reach the leader.
    pub fn set_forwarder(&self, f: Arc<dyn Forwarder>) {
        *self.forwarder.lock() = Some(f);
    }

    /// The member's write path.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The limits and identity in force.
    pub fn config(&self) -> &ServiceConfig {
        &self.cfg
    }

    /// A response header at `revision` (0: no revision, as etcd's cluster
    /// calls send).
    pub fn header(&self, revision: i64) -> Option<ResponseHeader> {
        Some(ResponseHeader {
            cluster_id: self.state.cluster_id,
            member_id: self.state.member_id,
            revision,
            raft_term: self.state.term(),
        })
    }

    pub(crate) fn fill(&self, h: &mut Option<ResponseHeader>) {
        let revision = h.as_ref().map_or(0, |h| h.revision);
        *h = self.header(revision);
    }

    /// What the transport accepts at all: etcd lets a message be this much
    /// larger than `--max-request-bytes` before gRPC itself refuses it.
    pub fn transport_limit(&self) -> usize {
        self.cfg.max_request_bytes + 512 * 1024
    }

    pub(crate) fn check_size(&self, encoded_len: usize) -> Result<(), EtcdError> {
        if encoded_len > self.transport_limit() {
            return Err(EtcdError::MessageTooLarge {
                size: encoded_len,
                limit: self.transport_limit(),
            });
        }
        if encoded_len > self.cfg.max_request_bytes {
            return Err(EtcdError::RequestTooLarge);
        }
        Ok(())
    }

    /// Proposes `op`, checked at auth revision `checked_at`, and returns
    /// the answer of the expected kind with the member's header filled in;
    /// `pick` extracts that kind.
    pub(crate) async fn write<T: HasHeader>(
        &self,
        op: LogOp,
        checked_at: u64,
        pick: fn(WriteResponse) -> Result<T, WriteResponse>,
    ) -> Result<T, EtcdError> {
        let mut r = pick(self.propose(op, checked_at).await?).map_err(|other| unexpected(&other))?;
        self.fill(r.header_mut());
        Ok(r)
    }

    pub(crate) async fn propose(&self, op: LogOp, checked_at: u64) -> Result<WriteResponse, EtcdError> {
        self.node
            .propose(LogRequest {
                request: Some(op),
                auth_revision: checked_at,
                ..Default::default()
            })
            .await
    }

    /// The latest revision of the key space.
    pub fn current_revision(&self) -> i64 {
        self.state.current_revision()
    }

    /// `Maintenance.Status`.
    pub fn status(&self) -> StatusResponse {
        let index = self.state.applied_index();
        StatusResponse {
            header: self.header(self.state.current_revision()),
            version: ETCD_API_VERSION.into(),
            db_size: self.state.db_size() as i64,
            leader: self.state.leader(),
            raft_index: index,
            raft_term: self.state.term(),
            raft_applied_index: index,
            db_size_in_use: self.state.db_size_in_use() as i64,
            ..Default::default()
        }
    }

    /// This member as the cluster API describes it.
    pub fn member(&self) -> Member {
        Member {
            id: self.state.member_id,
            name: self.cfg.name.clone(),
            peer_ur_ls: self.cfg.peer_urls.clone(),
            client_ur_ls: self.cfg.client_urls.clone(),
            is_learner: false,
        }
    }

    /// Whether this member's name and client URLs are in the replicated
    /// member list yet (a lone member's always are). Until they are, other
    /// members' `member list` shows it unstarted: it is not healthy.
    pub fn is_published(&self) -> bool {
        if !self.node().is_replicated() {
            return true;
        }
        let me = self.state.member_id;
        self.state.with(|sm| {
            sm.members
                .get(&me)
                .is_some_and(|m| !m.name.is_empty() && !m.client_urls.is_empty())
        })
    }

    /// `Cluster.MemberList`: this member, or with raft every member that
    /// has published its attributes.
    pub fn member_list(&self) -> MemberListResponse {
        let mut members: Vec<Member> = self.state.with(|sm| {
            sm.members
                .values()
                .map(|m| Member {
                    id: m.id,
                    name: m.name.clone(),
                    peer_ur_ls: m.peer_urls.clone(),
                    client_ur_ls: m.client_urls.clone(),
                    is_learner: m.is_learner,
                })
                .collect()
        });
        if !members.iter().any(|m| m.id == self.state.member_id) {
            members.push(self.member());
        }
        members.sort_by_key(|m| m.id);
        MemberListResponse {
            header: self.header(0),
            members,
        }
    }
}

/// Answers that carry a response header.
pub(crate) trait HasHeader {
    fn header_mut(&mut self) -> &mut Option<ResponseHeader>;
}

macro_rules! has_header {
    ($($t:ty),*) => {$(
        impl HasHeader for $t {
            fn header_mut(&mut self) -> &mut Option<ResponseHeader> {
                &mut self.header
            }
        }
    )*};
}
has_header!(
    crate::api::etcdserverpb::PutResponse,
    crate::api::etcdserverpb::DeleteRangeResponse,
    crate::api::etcdserverpb::TxnResponse,
    crate::api::etcdserverpb::CompactionResponse,
    crate::api::etcdserverpb::LeaseGrantResponse,
    crate::api::etcdserverpb::LeaseRevokeResponse
);

pub(crate) fn unexpected(r: &WriteResponse) -> EtcdError {
    EtcdError::Internal(format!("write answered with the wrong kind: {r:?}"))
}
