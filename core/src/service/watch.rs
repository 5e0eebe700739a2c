//! `Watch`: one session per stream (a gRPC Watch call or a gateway request).

use std::sync::Arc;

use super::auth::{identify, require};
use super::{Caller, EtcdService};
use crate::api::error::EtcdError;
use crate::api::etcdserverpb::watch_request::RequestUnion;
use crate::api::etcdserverpb::WatchRequest;
use crate::auth::token::Tokens;
use crate::auth::Access;
use crate::raft::State;
use crate::watch::{WatchReceiver, WatchStream};

/// The cancel reason etcd gives a watch it may not create (the gRPC
/// error's text, as etcd puts it).
const PERMISSION_DENIED: &str = "rpc error: code = PermissionDenied desc = etcdserver: permission denied";

/// One watch stream's request side. Dropping it cancels its watchers.
pub struct WatchSession {
    stream: WatchStream,
    state: Arc<State>,
    tokens: Arc<Tokens>,
    caller: Caller,
}

impl WatchSession {
    /// Resolves when the next request may be handled: a client that does
    /// not read its answers is not read either, so its queue stays bounded.
    pub async fn ready(&self) {
        self.stream.has_room().await;
    }

    /// Handles one request of the stream: create, cancel or progress. While
    /// auth is on, a create needs read permission on its range; refused,
    /// it is answered created and canceled with etcd's reason.
    pub fn handle(&self, req: WatchRequest) {
        match req.request_union {
            Some(RequestUnion::CreateRequest(c)) => {
                let allowed = identify(&self.tokens, &self.state, &self.caller)
                    .and_then(|id| require(&self.state, &id, &c.key, &c.range_end, Access::Read));
                match allowed {
                    Ok(()) => self.stream.create(&c, self.state.current_revision()),
                    Err(e) => {
                        tracing::debug!(error = %e, "watch refused");
                        self.stream
                            .refuse(&c, self.state.current_revision(), PERMISSION_DENIED.into());
                    }
                }
            }
            Some(RequestUnion::CancelRequest(c)) => self.stream.cancel(c.watch_id),
            Some(RequestUnion::ProgressRequest(_)) => self.stream.progress(),
            None => {}
        }
    }
}

impl EtcdService {
    /// Opens a watch stream for `caller`: requests go to the session,
    /// responses come out of the receiver, in order. A token that is
    /// invalid or stale fails the stream at once, so clients can
    /// authenticate again and retry. While auth is on, a caller with no
    /// identity at all (no token, no client certificate) gets no stream:
    /// `etcdserver: user name is empty` (etcd opens it and refuses each
    /// watch; an anonymous client then holds a stream for nothing).
    pub fn watch(&self, caller: Caller) -> Result<(WatchSession, WatchReceiver), EtcdError> {
        if let Some(id) = self.identify(&caller)? {
            if id.user.is_empty() {
                return Err(EtcdError::UserEmpty);
            }
        }
        let (stream, rx) = self.state.watch();
        Ok((
            WatchSession {
                stream,
                state: Arc::clone(&self.state),
                tokens: Arc::clone(&self.tokens),
                caller,
            },
            rx,
        ))
    }
}
