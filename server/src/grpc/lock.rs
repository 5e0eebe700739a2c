//! `v3lockpb.Lock`.

use std::sync::Arc;

use concord_core::api::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse};
use concord_core::service::EtcdService;
use tonic::{Request, Response, Status};

use super::{caller, status};

pub struct Lock(pub Arc<EtcdService>);

#[tonic::async_trait]
impl crate::pb::v3lockpb::lock_server::Lock for Lock {
    async fn lock(&self, r: Request<LockRequest>) -> Result<Response<LockResponse>, Status> {
        self.0
            .lock(&caller(&r), r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn unlock(&self, r: Request<UnlockRequest>) -> Result<Response<UnlockResponse>, Status> {
        self.0
            .unlock(&caller(&r), r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }
}
