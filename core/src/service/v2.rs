//! The v2 keys API over the log: writes are proposed like any other (the
//! proposer's clock fixes expiry times), reads are served from the applied
//! store (through a read barrier with `quorum=true`), and the leader
//! expires TTLs by proposing its clock.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::api::concordpb::log_request::Request as LogOp;
use crate::api::concordpb::v2_request::Method;
use crate::api::concordpb::V2Request;
use crate::api::error::EtcdError;
use crate::state_machine::WriteResponse;
use crate::v2::{Event, Outcome, V2Error, Watch, WatchSpec};

use super::{Caller, EtcdService};

/// Longest TTL taken (about 100 years); longer ones are capped.
pub const MAX_TTL_SECS: u64 = 100 * 365 * 24 * 3600;

/// Credentials a v2 request came with.
#[derive(Clone, Debug)]
pub enum V2Credentials {
    /// HTTP Basic: a v3 user and password.
    Basic { user: String, password: String },
    /// A v3 token or client certificate, as the caller carries it.
    Caller,
}

/// The wall clock in Unix nanoseconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

impl EtcdService {
    /// Lets a v2 request through: anyone while v3 auth is off; otherwise
    /// only a user holding the root role (v2 keys have no v3 permissions
    /// to check against). The auth revision it was checked at (0: off).
    pub async fn v2_authorize(&self, caller: &Caller, creds: V2Credentials) -> Result<u64, EtcdError> {
        if !self.state.with(|sm| sm.auth.enabled()) {
            return Ok(0);
        }
        match creds {
            V2Credentials::Basic { user, password } => {
                let revision = self.check_password(caller, &user, password).await?;
                if !self.state.with(|sm| sm.auth.is_admin(&user)) {
                    return Err(EtcdError::PermissionDenied);
                }
                Ok(revision)
            }
            V2Credentials::Caller => {
                let checked = self.check_admin(caller)?;
                if checked == 0 {
                    // Auth is on but the caller has no identity.
                    return Err(EtcdError::UserEmpty);
                }
                Ok(checked)
            }
        }
    }

    /// Proposes a v2 write; `ttl` (seconds) becomes an expiry time by this
    /// member's clock. The event, or the v2 error the store answered.
    pub async fn v2_write(
        &self,
        mut req: V2Request,
        ttl: Option<u64>,
        checked_at: u64,
    ) -> Result<Result<std::sync::Arc<Event>, V2Error>, EtcdError> {
        req.now = unix_now();
        req.expiration = match ttl {
            Some(t) => req.now.saturating_add((t.min(MAX_TTL_SECS) as i64) * 1_000_000_000),
            None => 0,
        };
        let len = prost::Message::encoded_len(&req);
        self.check_size(len)?;
        if !matches!(req.method(), Method::Delete | Method::CompareAndDelete) {
            // v2 keys live in the backend too: they count against its quota.
            self.check_quota(len).await?;
        }
        match self.propose(LogOp::V2(req), checked_at).await? {
            WriteResponse::V2(Outcome::Done(e)) => Ok(Ok(e)),
            WriteResponse::V2(Outcome::Refused(e)) => Ok(Err(e)),
            other => Err(super::unexpected(&other)),
        }
    }

    /// `GET`: the node at `path` by this member's clock; with `quorum`,
    /// after every write committed before the call is applied here.
    pub async fn v2_get(&self, path: &str, recursive: bool, quorum: bool) -> Result<Result<Event, V2Error>, EtcdError> {
        if quorum {
            self.node.read_barrier().await?;
        }
        let now = unix_now();
        Ok(self.state.with(|sm| sm.v2.get(path, recursive, now)))
    }

    /// `wait=true`: an event at or after `spec.since`, already happened or
    /// to wait for.
    pub fn v2_watch(&self, spec: WatchSpec) -> Result<Watch, V2Error> {
        self.state.with(|sm| sm.v2.watch(spec))
    }

    /// The v2 store's index, the applied log index and the term, for the
    /// `X-Etcd-Index`, `X-Raft-Index` and `X-Raft-Term` headers.
    pub fn v2_position(&self) -> (u64, u64, u64) {
        let index = self.state.with(|sm| sm.v2.index());
        (index, self.state.applied_index(), self.state.term())
    }

    /// Runs `f` on the v2 store (stats).
    pub fn with_v2<T>(&self, f: impl FnOnce(&crate::v2::V2Store) -> T) -> T {
        self.state.with(|sm| f(&sm.v2))
    }

    /// On the leader, expires through the log every v2 node whose time has
    /// come by this member's clock. The number of nodes that went.
    pub async fn expire_v2(&self) -> usize {
        if !self.node.is_leader() {
            return 0;
        }
        let now = unix_now();
        if !self.state.with(|sm| sm.v2.next_expiration().is_some_and(|t| t <= now)) {
            return 0;
        }
        let req = V2Request {
            method: Method::Expire as i32,
            now,
            ..Default::default()
        };
        match self.propose(LogOp::V2(req), 0).await {
            Ok(WriteResponse::V2(Outcome::Expired(n))) => n,
            Ok(other) => {
                tracing::warn!(answer = ?other, "v2 expiry answered with the wrong kind");
                0
            }
            Err(e) => {
                tracing::warn!(error = %e, "expired v2 keys not removed yet");
                0
            }
        }
    }
}
