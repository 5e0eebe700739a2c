//! `etcdserverpb.KV`.

use std::sync::Arc;

use concord_core::api::etcdserverpb::*;
use concord_core::service::EtcdService;
use tonic::{Request, Response, Status};

use super::{caller, status};

pub struct Kv(pub Arc<EtcdService>);

#[tonic::async_trait]
impl crate::pb::etcdserverpb::kv_server::Kv for Kv {
    async fn range(&self, r: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        self.0
            .range(&caller(&r), r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn put(&self, r: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        self.0
            .put(&caller(&r), r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn delete_range(&self, r: Request<DeleteRangeRequest>) -> Result<Response<DeleteRangeResponse>, Status> {
        self.0
            .delete_range(&caller(&r), r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn txn(&self, r: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        self.0
            .txn(&caller(&r), r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn compact(&self, r: Request<CompactionRequest>) -> Result<Response<CompactionResponse>, Status> {
        self.0
            .compact(&caller(&r), r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }
}
