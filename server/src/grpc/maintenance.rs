//! `etcdserverpb.Maintenance`: Status today; the other calls answer
//! Unimplemented until their issues land.

use std::pin::Pin;
use std::sync::Arc;

use concord_core::api::etcdserverpb::*;
use concord_core::service::EtcdService;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::{caller, status};

pub struct Maintenance(pub Arc<EtcdService>);

/// Maintenance calls other than Status are root's (when auth is on).
fn admin<T>(svc: &EtcdService, r: &Request<T>) -> Result<(), Status> {
    svc.check_admin(&caller(r)).map(|_| ()).map_err(status)
}

fn unimplemented(method: &str) -> Status {
    Status::unimplemented(format!("concord: Maintenance.{method} is not implemented yet"))
}

#[tonic::async_trait]
impl crate::pb::etcdserverpb::maintenance_server::Maintenance for Maintenance {
    type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

    async fn status(&self, _r: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(self.0.status()))
    }

    async fn alarm(&self, r: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        admin(&self.0, &r)?;
        Err(unimplemented("Alarm"))
    }

    async fn defragment(&self, r: Request<DefragmentRequest>) -> Result<Response<DefragmentResponse>, Status> {
        admin(&self.0, &r)?;
        Err(unimplemented("Defragment"))
    }

    async fn hash(&self, r: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        admin(&self.0, &r)?;
        Err(unimplemented("Hash"))
    }

    async fn hash_kv(&self, r: Request<HashKvRequest>) -> Result<Response<HashKvResponse>, Status> {
        admin(&self.0, &r)?;
        Err(unimplemented("HashKV"))
    }

    async fn snapshot(&self, r: Request<SnapshotRequest>) -> Result<Response<Self::SnapshotStream>, Status> {
        admin(&self.0, &r)?;
        Err(unimplemented("Snapshot"))
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
        admin(&self.0, &r)?;
        Err(unimplemented("Downgrade"))
    }
}
