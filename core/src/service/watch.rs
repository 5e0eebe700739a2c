//! `Watch`: one session per stream (a gRPC Watch call or a gateway request).

use std::sync::Arc;

use super::EtcdService;
use crate::api::etcdserverpb::watch_request::RequestUnion;
use crate::api::etcdserverpb::WatchRequest;
use crate::raft::State;
use crate::watch::{WatchReceiver, WatchStream};

/// One watch stream's request side. Dropping it cancels its watchers.
pub struct WatchSession {
    stream: WatchStream,
    state: Arc<State>,
}

impl WatchSession {
    /// Handles one request of the stream: create, cancel or progress.
    pub fn handle(&self, req: WatchRequest) {
        match req.request_union {
            Some(RequestUnion::CreateRequest(c)) => self.stream.create(&c, self.state.current_revision()),
            Some(RequestUnion::CancelRequest(c)) => self.stream.cancel(c.watch_id),
            Some(RequestUnion::ProgressRequest(_)) => self.stream.progress(),
            None => {}
        }
    }
}

impl EtcdService {
    /// Opens a watch stream: requests go to the session, responses come
    /// out of the receiver, in order.
    pub fn watch(&self) -> (WatchSession, WatchReceiver) {
        let (stream, rx) = self.state.watch();
        (
            WatchSession {
                stream,
                state: Arc::clone(&self.state),
            },
            rx,
        )
    }
}
