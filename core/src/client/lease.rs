//! Leases: grant, revoke, time-to-live, list, and keep-alive as a handle
//! whose background task refreshes the lease at a third of its TTL, keeps
//! trying every member until the lease's own deadline, and reports the
//! loss the moment the lease is gone.

use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{select, Either};
use tokio::sync::watch;

use super::rt::{self, Instant};
use super::transport::{Reply, Retry, StreamLine};
use super::{Client, Error};
use crate::api::error::EtcdError;
use crate::api::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseLeasesRequest,
    LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};

/// The pause before trying again after a refresh failed for a reason the
/// transport does not retry by itself.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// What a [`KeepAlive`] knows of its lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// Refreshed; `ttl` is the TTL the server granted last.
    Alive {
        /// Seconds.
        ttl: i64,
    },
    /// Gone: expired before a refresh got through, or revoked. Final.
    Lost(Error),
    /// The handle stopped refreshing ([`KeepAlive::close`]); the lease runs
    /// out its TTL unless revoked. Final.
    Closed,
}

/// A lease being kept alive: a handle usable from `&self` on any thread.
/// Dropping it (or [`KeepAlive::close`]) stops the refreshes, leaving the
/// lease to expire; revoking is explicit ([`Client::lease_revoke`]).
#[derive(Debug)]
pub struct KeepAlive {
    id: i64,
    state: watch::Receiver<LeaseState>,
    /// Dropped or sent to: the background task stops.
    stop: watch::Sender<bool>,
}

impl KeepAlive {
    /// The lease.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The lease's state now.
    pub fn state(&self) -> LeaseState {
        self.state.borrow().clone()
    }

    /// Waits until the lease is lost and says why; `None` if the handle
    /// was closed first.
    pub async fn lost(&self) -> Option<Error> {
        let mut state = self.state.clone();
        loop {
            match &*state.borrow_and_update() {
                LeaseState::Lost(e) => return Some(e.clone()),
                LeaseState::Closed => return None,
                LeaseState::Alive { .. } => {}
            }
            if state.changed().await.is_err() {
                // The task ends only after reporting a final state.
                return match &*state.borrow() {
                    LeaseState::Lost(e) => Some(e.clone()),
                    _ => None,
                };
            }
        }
    }

    /// Waits for the next change of state (a refresh, the loss or the close).
    pub async fn changed(&self) -> LeaseState {
        let mut state = self.state.clone();
        let _ = state.changed().await;
        self.state()
    }

    /// Stops refreshing the lease (it is not revoked). Idempotent.
    pub fn close(&self) {
        self.stop.send_replace(true);
    }
}

impl Client {
    /// Grants a lease of `ttl` seconds; `id` 0 lets the server choose the ID.
    pub async fn lease_grant(&self, ttl: i64, id: i64) -> Result<LeaseGrantResponse, Error> {
        let req = LeaseGrantRequest { ttl, id };
        self.unary("/v3/lease/grant", &req, Retry::IfUnsent).await
    }

    /// Revokes a lease, deleting the keys attached to it.
    pub async fn lease_revoke(&self, id: i64) -> Result<LeaseRevokeResponse, Error> {
        self.unary("/v3/lease/revoke", &LeaseRevokeRequest { id }, Retry::IfUnsent)
            .await
    }

    /// A lease's granted and remaining TTL (and its keys, with `keys`).
    /// A lease that does not exist answers TTL -1, as etcd does.
    pub async fn lease_time_to_live(&self, id: i64, keys: bool) -> Result<LeaseTimeToLiveResponse, Error> {
        let req = LeaseTimeToLiveRequest { id, keys };
        self.unary("/v3/lease/timetolive", &req, Retry::Always).await
    }

    /// Every lease.
    pub async fn leases(&self) -> Result<LeaseLeasesResponse, Error> {
        self.unary("/v3/lease/leases", &LeaseLeasesRequest::default(), Retry::Always)
            .await
    }

    /// Refreshes a lease once. A lease that does not exist answers TTL 0.
    pub async fn lease_keep_alive_once(&self, id: i64) -> Result<LeaseKeepAliveResponse, Error> {
        self.refresh(id, self.deadline()).await
    }

    async fn refresh(&self, id: i64, deadline: Instant) -> Result<LeaseKeepAliveResponse, Error> {
        let body = Bytes::from(
            serde_json::to_vec(&LeaseKeepAliveRequest { id }).map_err(|e| Error::InvalidArgument(e.to_string()))?,
        );
        let Reply::Body(b) = self
            .transport
            .call("/v3/lease/keepalive", &body, Retry::Always, false, deadline)
            .await?
        else {
            unreachable!("unary calls read the whole body")
        };
        let line = b
            .split(|c| *c == b'\n')
            .find(|l| !l.iter().all(u8::is_ascii_whitespace));
        let line = line.ok_or_else(|| Error::Decode("keep-alive: empty answer".into()))?;
        let parsed: StreamLine<LeaseKeepAliveResponse> =
            serde_json::from_slice(line).map_err(|e| Error::Decode(format!("keep-alive: {e}")))?;
        match (parsed.result, parsed.error) {
            (_, Some(e)) => Err(Error::Etcd(e.into_etcd())),
            (Some(r), None) => Ok(r),
            (None, None) => Err(Error::Decode("keep-alive: no result".into())),
        }
    }

    /// Keeps a lease alive until the handle is dropped. The first refresh
    /// happens now: a lease that does not exist fails here. On native
    /// targets this must be called within a tokio runtime.
    pub async fn lease_keep_alive(&self, id: i64) -> Result<KeepAlive, Error> {
        let sent = Instant::now();
        let first = self.refresh(id, self.deadline()).await?;
        if first.ttl <= 0 {
            return Err(Error::Etcd(EtcdError::LeaseNotFound));
        }
        let (tx, rx) = watch::channel(LeaseState::Alive { ttl: first.ttl });
        let (stop, stop_rx) = watch::channel(false);
        let client = self.clone();
        rt::spawn(async move {
            let task = keep_alive_task(client, id, first.ttl, sent, &tx);
            if let Either::Right(_) = select(pin!(task), pin!(stopped(stop_rx))).await {
                tx.send_replace(LeaseState::Closed);
            }
        });
        Ok(KeepAlive { id, state: rx, stop })
    }
}

/// Resolves when the handle asks to stop or goes away.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn secs(s: i64) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

/// Refreshes lease `id` (last granted `ttl` for a refresh sent at `sent`)
/// until the handle goes away or the lease is lost.
async fn keep_alive_task(client: Client, id: i64, mut ttl: i64, mut sent: Instant, tx: &watch::Sender<LeaseState>) {
    loop {
        // The server counts the TTL from when it got the refresh, which is
        // after `sent`: `sent + ttl` is a safe deadline.
        let expires = sent + secs(ttl);
        let next = sent + secs(ttl) / 3;
        let wait = next.saturating_duration_since(Instant::now());
        rt::sleep(wait).await;
        loop {
            let attempt = Instant::now();
            let result = client.refresh(id, expires).await;
            match result {
                Ok(resp) if resp.ttl > 0 => {
                    ttl = resp.ttl;
                    sent = attempt;
                    tx.send_replace(LeaseState::Alive { ttl });
                    break;
                }
                Ok(_) | Err(Error::Etcd(EtcdError::LeaseNotFound)) => {
                    let reason = "the lease does not exist (expired or revoked)".to_string();
                    tx.send_replace(LeaseState::Lost(Error::LeaseLost { id, reason }));
                    return;
                }
                Err(e) => {
                    tracing::debug!(lease = id, error = %e, "keep-alive failed");
                    if Instant::now() >= expires || !rt::sleep_until_at_most(RETRY_PAUSE, expires).await {
                        let reason = format!("not refreshed within its TTL of {ttl} s ({e})");
                        tx.send_replace(LeaseState::Lost(Error::LeaseLost { id, reason }));
                        return;
                    }
                }
            }
        }
    }
}
