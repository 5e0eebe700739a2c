//! `etcdserverpb.Maintenance`.

use std::pin::Pin;
use std::sync::Arc;

use concord_core::api::etcdserverpb::*;
use concord_core::service::EtcdService;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::{caller, status};

pub struct Maintenance(pub Arc<EtcdService>);

#[tonic::async_trait]
impl crate::pb::etcdserverpb::maintenance_server::Maintenance for Maintenance {
    type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

    async fn status(&self, _r: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(self.0.status()))
    }

    async fn alarm(&self, r: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        let c = caller(&r);
        self.0
            .alarm(&c, r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn defragment(&self, r: Request<DefragmentRequest>) -> Result<Response<DefragmentResponse>, Status> {
        self.0.defragment(&caller(&r)).await.map(Response::new).map_err(status)
    }

    async fn hash(&self, r: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        self.0.hash(&caller(&r)).await.map(Response::new).map_err(status)
    }

    async fn hash_kv(&self, r: Request<HashKvRequest>) -> Result<Response<HashKvResponse>, Status> {
        let c = caller(&r);
        self.0
            .hash_kv(&c, r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn snapshot(&self, r: Request<SnapshotRequest>) -> Result<Response<Self::SnapshotStream>, Status> {
        let rx = self.0.snapshot(&caller(&r)).map_err(status)?;
        let stream = ReceiverStream::new(rx).map(|r| r.map_err(status));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn move_leader(&self, r: Request<MoveLeaderRequest>) -> Result<Response<MoveLeaderResponse>, Status> {
        let c = caller(&r);
        self.0
            .move_leader(&c, r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn downgrade(&self, r: Request<DowngradeRequest>) -> Result<Response<DowngradeResponse>, Status> {
        self.0.check_admin(&caller(&r)).map_err(status)?;
        Err(Status::unimplemented(
            "concord: Maintenance.Downgrade is not implemented (Concord has one storage version)",
        ))
    }
}
