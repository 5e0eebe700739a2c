//! `etcdserverpb.Maintenance`: Status today; the other calls answer
//! Unimplemented until their issues land.

use std::pin::Pin;
use std::sync::Arc;

use concord_core::api::etcdserverpb::*;
use concord_core::service::EtcdService;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

pub struct Maintenance(pub Arc<EtcdService>);

fn unimplemented(method: &str) -> Status {
    Status::unimplemented(format!("concord: Maintenance.{method} is not implemented yet"))
}

#[tonic::async_trait]
impl crate::pb::etcdserverpb::maintenance_server::Maintenance for Maintenance {
    type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

    async fn status(&self, _r: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(self.0.status()))
    }

    async fn alarm(&self, _r: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        Err(unimplemented("Alarm"))
    }

    async fn defragment(&self, _r: Request<DefragmentRequest>) -> Result<Response<DefragmentResponse>, Status> {
        Err(unimplemented("Defragment"))
    }

    async fn hash(&self, _r: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        Err(unimplemented("Hash"))
    }

    async fn hash_kv(&self, _r: Request<HashKvRequest>) -> Result<Response<HashKvResponse>, Status> {
        Err(unimplemented("HashKV"))
    }

    async fn snapshot(&self, _r: Request<SnapshotRequest>) -> Result<Response<Self::SnapshotStream>, Status> {
        Err(unimplemented("Snapshot"))
    }

    async fn move_leader(&self, _r: Request<MoveLeaderRequest>) -> Result<Response<MoveLeaderResponse>, Status> {
        Err(unimplemented("MoveLeader"))
    }

    async fn downgrade(&self, _r: Request<DowngradeRequest>) -> Result<Response<DowngradeResponse>, Status> {
        Err(unimplemented("Downgrade"))
    }
}
