//! `etcdserverpb.Cluster`: MemberList of the single member; membership
//! changes come with replication.

use std::sync::Arc;

use concord_core::api::etcdserverpb::*;
use concord_core::service::EtcdService;
use tonic::{Request, Response, Status};

use super::{caller, status};

pub struct Cluster(pub Arc<EtcdService>);

/// Membership changes are root's (when auth is on).
fn admin<T>(svc: &EtcdService, r: &Request<T>) -> Result<(), Status> {
    svc.check_admin(&caller(r)).map(|_| ()).map_err(status)
}

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

    async fn member_add(&self, r: Request<MemberAddRequest>) -> Result<Response<MemberAddResponse>, Status> {
        admin(&self.0, &r)?;
        Err(unimplemented("MemberAdd"))
    }

    async fn member_remove(&self, r: Request<MemberRemoveRequest>) -> Result<Response<MemberRemoveResponse>, Status> {
        admin(&self.0, &r)?;
        Err(unimplemented("MemberRemove"))
    }

    async fn member_update(&self, r: Request<MemberUpdateRequest>) -> Result<Response<MemberUpdateResponse>, Status> {
        admin(&self.0, &r)?;
        Err(unimplemented("MemberUpdate"))
    }

    async fn member_promote(
        &self,
        r: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        admin(&self.0, &r)?;
        Err(unimplemented("MemberPromote"))
    }
}
