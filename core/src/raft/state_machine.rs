//! The state machine the log is applied to: the key space and the lessor.
//! Deterministic: the same entries give the same revisions, leases and
//! events on every member.

use crate::api::concordpb::log_request::Request as LogOp;
use crate::api::error::EtcdError;
use crate::api::etcdserverpb::{
    CompactionResponse, DeleteRangeResponse, LeaseGrantResponse, LeaseRevokeResponse, PutResponse, ResponseHeader,
    TxnResponse,
};
use crate::api::mvccpb::Event;
use crate::lease::Lessor;
use crate::mvcc::{self, BackendError, KvWrite, Mvcc};

/// Durable lease records, written in the same transaction as the changes.
pub trait LeaseStore {
    /// Records a granted lease.
    fn put_lease(&mut self, id: i64, ttl: i64) -> Result<(), BackendError>;
    /// Forgets a revoked lease.
    fn delete_lease(&mut self, id: i64) -> Result<(), BackendError>;
}

/// The answer to one applied write (header revision set; the cluster
/// fields are the server's to fill).
#[derive(Clone, Debug, PartialEq)]
pub enum WriteResponse {
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Compaction(CompactionResponse),
    LeaseGrant(LeaseGrantResponse),
    LeaseRevoke(LeaseRevokeResponse),
}

/// Why an entry was not applied. [`ApplyError::Fatal`] means the storage
/// failed and the member must stop; the others are answers to the client
/// (and changed nothing).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Refused by the rules (compacted revision, unknown lease, …).
    #[error(transparent)]
    Refused(EtcdError),
    /// The storage failed or is inconsistent.
    #[error("state machine: {0}")]
    Fatal(String),
}

impl From<mvcc::Error> for ApplyError {
    fn from(e: mvcc::Error) -> Self {
        match e {
            mvcc::Error::Backend(_) | mvcc::Error::Missing(_) => ApplyError::Fatal(e.to_string()),
            other => ApplyError::Refused(other.into()),
        }
    }
}

impl From<BackendError> for ApplyError {
    fn from(e: BackendError) -> Self {
        ApplyError::Fatal(e.to_string())
    }
}

/// The key space and the leases.
#[derive(Debug, Default)]
pub struct StateMachine {
    /// The revisioned key space.
    pub mvcc: Mvcc,
    /// Leases and their attached keys.
    pub lessor: Lessor,
}

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..Default::default()
    })
}

impl StateMachine {
    /// Applies one logged write.
    pub fn apply<W: KvWrite + LeaseStore>(&mut self, w: &mut W, op: &LogOp) -> Result<WriteResponse, ApplyError> {
        let sm = self;
        Ok(match op {
            LogOp::Put(p) => WriteResponse::Put(sm.mvcc.put(w, &mut sm.lessor, p)?),
            LogOp::DeleteRange(d) => WriteResponse::DeleteRange(sm.mvcc.delete_range(w, &mut sm.lessor, d)?),
            LogOp::Txn(t) => WriteResponse::Txn(sm.mvcc.txn(w, &mut sm.lessor, t)?),
            LogOp::Compaction(c) => WriteResponse::Compaction(sm.mvcc.compact(w, c)?),
            LogOp::LeaseGrant(g) => {
                if !sm.lessor.grant(g.id, g.ttl) {
                    return Err(ApplyError::Refused(EtcdError::LeaseExist));
                }
                w.put_lease(g.id, g.ttl)?;
                WriteResponse::LeaseGrant(LeaseGrantResponse {
                    header: header(sm.mvcc.current_revision()),
                    id: g.id,
                    ttl: g.ttl,
                    error: String::new(),
                })
            }
            LogOp::LeaseRevoke(r) => {
                let keys = sm
                    .lessor
                    .revoke(r.id)
                    .ok_or(ApplyError::Refused(EtcdError::LeaseNotFound))?;
                let rev = sm.mvcc.delete_keys(w, &mut sm.lessor, keys.iter().map(Vec::as_slice))?;
                w.delete_lease(r.id)?;
                WriteResponse::LeaseRevoke(LeaseRevokeResponse { header: header(rev) })
            }
        })
    }

    /// The changes made since the last call, in revision order.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.mvcc.take_events()
    }
}
