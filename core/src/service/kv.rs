//! `KV`: range, put, delete-range, txn, compact.

use prost::Message;

use super::EtcdService;
use crate::api::concordpb::log_request::Request as LogOp;
use crate::api::error::EtcdError;
use crate::api::etcdserverpb::request_op::Request as Op;
use crate::api::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use crate::mvcc::validate;
use crate::raft::WriteResponse;

fn txn_has_puts(t: &TxnRequest) -> bool {
    t.success.iter().chain(&t.failure).any(|op| match &op.request {
        Some(Op::RequestPut(_)) => true,
        Some(Op::RequestTxn(n)) => txn_has_puts(n),
        _ => false,
    })
}

impl EtcdService {
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
        self.write(LogOp::Put(req), |r| match r {
            WriteResponse::Put(r) => Ok(r),
            other => Err(other),
        })
        .await
    }

    /// `KV.DeleteRange`.
    pub async fn delete_range(&self, req: DeleteRangeRequest) -> Result<DeleteRangeResponse, EtcdError> {
        validate::check_delete_range(&req)?;
        self.check_size(req.encoded_len())?;
        self.write(LogOp::DeleteRange(req), |r| match r {
            WriteResponse::DeleteRange(r) => Ok(r),
            other => Err(other),
        })
        .await
    }

    /// `KV.Txn`.
    pub async fn txn(&self, req: TxnRequest) -> Result<TxnResponse, EtcdError> {
        validate::check_txn(&req, self.cfg.max_txn_ops)?;
        let len = req.encoded_len();
        self.check_size(len)?;
        if txn_has_puts(&req) {
            self.check_quota(len)?;
        }
        self.write(LogOp::Txn(req), |r| match r {
            WriteResponse::Txn(r) => Ok(r),
            other => Err(other),
        })
        .await
    }

    /// `KV.Compact`. Compaction is applied (physically) before the answer,
    /// so `physical` needs no extra wait.
    pub async fn compact(&self, req: CompactionRequest) -> Result<CompactionResponse, EtcdError> {
        self.write(LogOp::Compaction(req), |r| match r {
            WriteResponse::Compaction(r) => Ok(r),
            other => Err(other),
        })
        .await
    }
}
