//! `KV`: range, put, delete-range, txn, compact.

use prost::Message;

use super::auth::{checked_at, require, txn_access};
use super::{Caller, EtcdService};
use crate::api::concordpb::log_request::Request as LogOp;
use crate::api::error::EtcdError;
use crate::api::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use crate::auth::Access;
use crate::mvcc::validate;
use crate::state_machine::{txn_has_puts, WriteResponse};

/// Values a range reads on the runtime worker it arrived on; a larger one
/// reads on a blocking thread.
const INLINE_RANGE: usize = 256;

impl EtcdService {
    /// `KV.Range`.
    pub async fn range(&self, caller: &Caller, req: RangeRequest) -> Result<RangeResponse, EtcdError> {
        validate::check_range(&req)?;
        self.check(caller, &req.key, &req.range_end, Access::Read)?;
        if req.encoded_len() > self.transport_limit() {
            return Err(EtcdError::MessageTooLarge {
                size: req.encoded_len(),
                limit: self.transport_limit(),
            });
        }
        if !req.serializable {
            // Linearizable: everything committed before now is applied here.
            self.node.read_barrier().await?;
        }
        let (plan, view) = self.state.range_plan(&req)?;
        let mut resp = if plan.len() <= INLINE_RANGE {
            plan.fetch(&view, &req)?
        } else {
            // A large read goes to a blocking thread: it must not hold a
            // runtime worker (and the requests queued behind it).
            tokio::task::spawn_blocking(move || plan.fetch(&view, &req))
                .await
                .map_err(|e| EtcdError::Internal(e.to_string()))??
        };
        self.fill(&mut resp.header);
        Ok(resp)
    }

    /// `KV.Put`.
    pub async fn put(&self, caller: &Caller, req: PutRequest) -> Result<PutResponse, EtcdError> {
        validate::check_put(&req)?;
        let len = req.encoded_len();
        self.check_size(len)?;
        let id = self.check(caller, &req.key, &[], Access::Write)?;
        if req.prev_kv {
            require(&self.state, &id, &req.key, &[], Access::Read)?;
        }
        self.check_quota(len).await?;
        self.write(LogOp::Put(req), checked_at(&id), |r| match r {
            WriteResponse::Put(r) => Ok(r),
            other => Err(other),
        })
        .await
    }

    /// `KV.DeleteRange`.
    pub async fn delete_range(
        &self,
        caller: &Caller,
        req: DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, EtcdError> {
        validate::check_delete_range(&req)?;
        self.check_size(req.encoded_len())?;
        let id = self.check(caller, &req.key, &req.range_end, Access::Write)?;
        if req.prev_kv {
            require(&self.state, &id, &req.key, &req.range_end, Access::Read)?;
        }
        self.write(LogOp::DeleteRange(req), checked_at(&id), |r| match r {
            WriteResponse::DeleteRange(r) => Ok(r),
            other => Err(other),
        })
        .await
    }

    /// `KV.Txn`.
    pub async fn txn(&self, caller: &Caller, req: TxnRequest) -> Result<TxnResponse, EtcdError> {
        validate::check_txn(&req, self.cfg.max_txn_ops)?;
        let len = req.encoded_len();
        self.check_size(len)?;
        let id = self.identify(caller)?;
        let mut needs = Vec::new();
        txn_access(&req, &mut needs);
        for (key, end, access) in needs {
            require(&self.state, &id, key, end, access)?;
        }
        if txn_has_puts(&req) {
            self.check_quota(len).await?;
        }
        self.write(LogOp::Txn(req), checked_at(&id), |r| match r {
            WriteResponse::Txn(r) => Ok(r),
            other => Err(other),
        })
        .await
    }

    /// `KV.Compact` (root only while auth is on). Compaction is applied
    /// (physically) before the answer, so `physical` needs no extra wait.
    pub async fn compact(&self, caller: &Caller, req: CompactionRequest) -> Result<CompactionResponse, EtcdError> {
        let checked = self.check_admin(caller)?;
        self.write(LogOp::Compaction(req), checked, |r| match r {
            WriteResponse::Compaction(r) => Ok(r),
            other => Err(other),
        })
        .await
    }
}
