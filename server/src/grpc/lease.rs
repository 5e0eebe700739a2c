//! `etcdserverpb.Lease`.

use std::pin::Pin;
use std::sync::Arc;

use concord_core::api::etcdserverpb::*;
use concord_core::service::EtcdService;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::{caller, status};

pub struct Lease(pub Arc<EtcdService>);

#[tonic::async_trait]
impl crate::pb::etcdserverpb::lease_server::Lease for Lease {
    type LeaseKeepAliveStream = Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

    async fn lease_grant(&self, r: Request<LeaseGrantRequest>) -> Result<Response<LeaseGrantResponse>, Status> {
        self.0
            .lease_grant(r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn lease_revoke(&self, r: Request<LeaseRevokeRequest>) -> Result<Response<LeaseRevokeResponse>, Status> {
        self.0
            .lease_revoke(&caller(&r), r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn lease_keep_alive(
        &self,
        r: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let svc = Arc::clone(&self.0);
        let mut inbound = r.into_inner();
        tokio::spawn(async move {
            while let Ok(Some(req)) = inbound.message().await {
                let resp = svc.lease_keep_alive(req.id).await.map_err(status);
                if tx.send(resp).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn lease_time_to_live(
        &self,
        r: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        self.0
            .lease_time_to_live(&caller(&r), r.get_ref())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn lease_leases(&self, _r: Request<LeaseLeasesRequest>) -> Result<Response<LeaseLeasesResponse>, Status> {
        Ok(Response::new(self.0.lease_leases()))
    }
}
