//! `KV`: range, put, delete-range, txn, compact.

use prost::Message;

use super::{unexpected, EtcdService};
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
}
