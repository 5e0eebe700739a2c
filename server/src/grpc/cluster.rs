//! `etcdserverpb.Cluster`: MemberList of the single member; membership
//! changes come with replication.

use std::sync::Arc;

use concord_core::api::etcdserverpb::*;
use concord_core::service::EtcdService;
use tonic::{Request, Response, Status};

pub struct Cluster(pub Arc<EtcdService>);

fn unimplemented(method: &str) -> Status {
    Status::unimplemented(format!(
        "concord: Cluster.{method} needs replication, not implemented yet"
    ))
}

#[tonic::async_trait]
impl crate::pb::etcdserverpb::cluster_server::Cluster for Cluster {
    async fn member_list(&self, _r: Request<MemberListRequest>) -> Result<Response<MemberListResponse>, Status> {
        Ok(Response::new(self.0.member_list()))
    }

    async fn member_add(&self, _r: Request<MemberAddRequest>) -> Result<Response<MemberAddResponse>, Status> {
        Err(unimplemented("MemberAdd"))
    }

    async fn member_remove(&self, _r: Request<MemberRemoveRequest>) -> Result<Response<MemberRemoveResponse>, Status> {
        Err(unimplemented("MemberRemove"))
    }

    async fn member_update(&self, _r: Request<MemberUpdateRequest>) -> Result<Response<MemberUpdateResponse>, Status> {
        Err(unimplemented("MemberUpdate"))
    }

    async fn member_promote(
        &self,
        _r: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        Err(unimplemented("MemberPromote"))
    }
}
