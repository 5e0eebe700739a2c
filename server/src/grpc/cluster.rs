//! `etcdserverpb.Cluster`: the member list and membership changes.

use std::sync::Arc;

use concord_core::api::etcdserverpb::*;
use concord_core::service::EtcdService;
use tonic::{Request, Response, Status};

use super::{caller, status};

pub struct Cluster(pub Arc<EtcdService>);

#[tonic::async_trait]
impl crate::pb::etcdserverpb::cluster_server::Cluster for Cluster {
    async fn member_list(&self, _r: Request<MemberListRequest>) -> Result<Response<MemberListResponse>, Status> {
        Ok(Response::new(self.0.member_list()))
    }

    async fn member_add(&self, r: Request<MemberAddRequest>) -> Result<Response<MemberAddResponse>, Status> {
        let c = caller(&r);
        self.0
            .member_add(&c, r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn member_remove(&self, r: Request<MemberRemoveRequest>) -> Result<Response<MemberRemoveResponse>, Status> {
        let c = caller(&r);
        self.0
            .member_remove(&c, r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn member_update(&self, r: Request<MemberUpdateRequest>) -> Result<Response<MemberUpdateResponse>, Status> {
        let c = caller(&r);
        self.0
            .member_update(&c, r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn member_promote(
        &self,
        r: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        let c = caller(&r);
        self.0
            .member_promote(&c, r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }
}
