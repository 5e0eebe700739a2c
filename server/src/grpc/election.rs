//! `v3electionpb.Election`.

use std::pin::Pin;
use std::sync::Arc;

use concord_core::api::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderRequest, LeaderResponse, ProclaimRequest, ProclaimResponse, ResignRequest,
    ResignResponse,
};
use concord_core::service::EtcdService;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::{caller, status};

pub struct Election(pub Arc<EtcdService>);

#[tonic::async_trait]
impl crate::pb::v3electionpb::election_server::Election for Election {
    type ObserveStream = Pin<Box<dyn Stream<Item = Result<LeaderResponse, Status>> + Send>>;

    async fn campaign(&self, r: Request<CampaignRequest>) -> Result<Response<CampaignResponse>, Status> {
        self.0
            .campaign(&caller(&r), r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn proclaim(&self, r: Request<ProclaimRequest>) -> Result<Response<ProclaimResponse>, Status> {
        self.0
            .proclaim(&caller(&r), r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn leader(&self, r: Request<LeaderRequest>) -> Result<Response<LeaderResponse>, Status> {
        self.0
            .leader(&caller(&r), r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn observe(&self, r: Request<LeaderRequest>) -> Result<Response<Self::ObserveStream>, Status> {
        let rx = self.0.observe(&caller(&r), r.into_inner()).map_err(status)?;
        Ok(Response::new(Box::pin(
            ReceiverStream::new(rx).map(|r| r.map_err(status)),
        )))
    }

    async fn resign(&self, r: Request<ResignRequest>) -> Result<Response<ResignResponse>, Status> {
        self.0
            .resign(&caller(&r), r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }
}
