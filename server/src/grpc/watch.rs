//! `etcdserverpb.Watch`: one bidirectional stream, many watchers.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use concord_core::api::etcdserverpb::{WatchRequest, WatchResponse};
use concord_core::service::{EtcdService, WatchSession};
use concord_core::watch::WatchReceiver;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

pub struct Watch(pub Arc<EtcdService>);

/// The response side of a watch call. It keeps the session (and so the
/// watchers) alive after the client stops sending, until the call ends,
/// as etcd does.
pub struct Outbound {
    rx: WatchReceiver,
    _session: Arc<WatchSession>,
}

impl Stream for Outbound {
    type Item = Result<WatchResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|r| r.map(Ok))
    }
}

#[tonic::async_trait]
impl crate::pb::etcdserverpb::watch_server::Watch for Watch {
    type WatchStream = Outbound;

    async fn watch(&self, req: Request<Streaming<WatchRequest>>) -> Result<Response<Outbound>, Status> {
        let (session, rx) = self.0.watch(super::caller(&req)).map_err(super::status)?;
        let session = Arc::new(session);
        let reader = Arc::clone(&session);
        let mut inbound = req.into_inner();
        tokio::spawn(async move {
            loop {
                // Stop reading while the client leaves its answers unread.
                reader.ready().await;
                let Ok(Some(msg)) = inbound.message().await else { break };
                reader.handle(msg);
            }
        });
        Ok(Response::new(Outbound { rx, _session: session }))
    }
}
