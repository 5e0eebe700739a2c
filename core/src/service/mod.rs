//! The one service layer: gRPC and the JSON gateway both call it with the
//! typed `api` messages, so etcd's rules are decided here once. Reads are
//! served from the applied state; writes are checked (etcd's stateless
//! checks, request size, space quota), proposed to the log, and answered
//! after apply, with the member's header filled in.

use std::sync::Arc;

use prost::Message;

use crate::api::concordpb::log_request::Request as LogOp;
use crate::api::concordpb::LogRequest;
use crate::api::error::EtcdError;
use crate::api::etcdserverpb::request_op::Request as Op;
use crate::api::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, Member, MemberListResponse,
    PutRequest, PutResponse, RangeRequest, RangeResponse, ResponseHeader, StatusResponse, TxnRequest, TxnResponse,
};
use crate::mvcc::{validate, WriteResponse};
use crate::raft::{Node, State};

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
        }
    }
}

/// etcd's KV, Maintenance and Cluster semantics over one member.
pub struct EtcdService {
    node: Node,
    state: Arc<State>,
    cfg: ServiceConfig,
}

fn txn_has_puts(t: &TxnRequest) -> bool {
    t.success.iter().chain(&t.failure).any(|op| match &op.request {
        Some(Op::RequestPut(_)) => true,
        Some(Op::RequestTxn(n)) => txn_has_puts(n),
        _ => false,
    })
}

impl EtcdService {
    /// A service over a started member.
    pub fn new(node: Node, cfg: ServiceConfig) -> Self {
        let state = Arc::clone(node.state());
        EtcdService { node, state, cfg }
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
            raft_term: self.state.term,
        })
    }

    fn fill(&self, h: &mut Option<ResponseHeader>) {
        let revision = h.as_ref().map_or(0, |h| h.revision);
        *h = self.header(revision);
    }

    /// What the transport accepts at all: etcd lets a message be this much
    /// larger than `--max-request-bytes` before gRPC itself refuses it.
    pub fn transport_limit(&self) -> usize {
        self.cfg.max_request_bytes + 512 * 1024
    }

    fn check_size(&self, encoded_len: usize) -> Result<(), EtcdError> {
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

    fn check_quota(&self, encoded_len: usize) -> Result<(), EtcdError> {
        if self.state.db_size() + encoded_len as u64 > self.cfg.quota_backend_bytes {
            return Err(EtcdError::NoSpace);
        }
        Ok(())
    }

    async fn propose(&self, op: LogOp) -> Result<WriteResponse, EtcdError> {
        self.node.propose(LogRequest { request: Some(op) }).await
    }

    /// `KV.Range`.
    pub async fn range(&self, req: RangeRequest) -> Result<RangeResponse, EtcdError> {
        validate::check_range(&req)?;
        if req.encoded_len() > self.transport_limit() {
            return Err(EtcdError::MessageTooLarge {
                size: req.encoded_len(),
                limit: self.transport_limit(),
            });
        }
        let mut resp = self.state.range(&req)?;
        self.fill(&mut resp.header);
        Ok(resp)
    }

    /// `KV.Put`.
    pub async fn put(&self, req: PutRequest) -> Result<PutResponse, EtcdError> {
        validate::check_put(&req)?;
        let len = req.encoded_len();
        self.check_size(len)?;
        self.check_quota(len)?;
        match self.propose(LogOp::Put(req)).await? {
            WriteResponse::Put(mut r) => {
                self.fill(&mut r.header);
                Ok(r)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// `KV.DeleteRange`.
    pub async fn delete_range(&self, req: DeleteRangeRequest) -> Result<DeleteRangeResponse, EtcdError> {
        validate::check_delete_range(&req)?;
        self.check_size(req.encoded_len())?;
        match self.propose(LogOp::DeleteRange(req)).await? {
            WriteResponse::DeleteRange(mut r) => {
                self.fill(&mut r.header);
                Ok(r)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// `KV.Txn`.
    pub async fn txn(&self, req: TxnRequest) -> Result<TxnResponse, EtcdError> {
        validate::check_txn(&req, self.cfg.max_txn_ops)?;
        let len = req.encoded_len();
        self.check_size(len)?;
        if txn_has_puts(&req) {
            self.check_quota(len)?;
        }
        match self.propose(LogOp::Txn(req)).await? {
            WriteResponse::Txn(mut r) => {
                self.fill(&mut r.header);
                Ok(r)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// `KV.Compact`. Compaction is applied (physically) before the answer,
    /// so `physical` needs no extra wait.
    pub async fn compact(&self, req: CompactionRequest) -> Result<CompactionResponse, EtcdError> {
        match self.propose(LogOp::Compaction(req)).await? {
            WriteResponse::Compaction(mut r) => {
                self.fill(&mut r.header);
                Ok(r)
            }
            other => Err(unexpected(&other)),
        }
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
            leader: self.state.member_id,
            raft_index: index,
            raft_term: self.state.term,
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

    /// `Cluster.MemberList`: one member, until replication lands.
    pub fn member_list(&self) -> MemberListResponse {
        MemberListResponse {
            header: self.header(0),
            members: vec![self.member()],
        }
    }
}

fn unexpected(r: &WriteResponse) -> EtcdError {
    EtcdError::Internal(format!("write answered with the wrong kind: {r:?}"))
}
