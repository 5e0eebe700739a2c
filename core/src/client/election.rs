//! Locks and elections through the server's `Lock` and `Election` services
//! (`/v3/lock/*`, `/v3/election/*`), which queue contenders as etcd's
//! client recipes do, so both kinds of client wait in one line.
//!
//! The fencing token of a lock or a leadership is its key's create
//! revision: guard writes with `Compare::create_revision(key).eq(token)` so
//! that they fail once the holder's lease has run out and someone else holds.

use std::time::Duration;

use bytes::Bytes;

use super::rt::{self, Instant};
use super::stream::{Feed, Lines};
use super::transport::{Reply, Retry};
use super::{Client, Error};
use crate::api::mvccpb::KeyValue;
use crate::api::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderKey, LeaderRequest, LeaderResponse, ProclaimRequest, ProclaimResponse,
    ResignRequest, ResignResponse,
};
use crate::api::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse};

/// How long a lock or campaign waits when the caller sets no limit.
const WAIT_FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);
/// The pause between attempts to reopen a broken observe stream, doubled up to a cap.
const REOPEN_START: Duration = Duration::from_millis(50);
const REOPEN_CAP: Duration = Duration::from_secs(1);

/// The leader of an election as it changes: the leader's key-value first
/// (once there is one), then each new value and each new leader.
pub type Observer = Feed<LeaderResponse>;

impl Client {
    fn waiting(wait: Option<Duration>) -> Instant {
        Instant::now() + wait.unwrap_or(WAIT_FOREVER).min(WAIT_FOREVER)
    }

    /// Waits until this client holds the lock `name` under `lease` (0: the
    /// server grants a lease of 60 s), at most `wait` (None: no limit).
    /// The answer's key is the lock's; pass it to [`Client::unlock`].
    pub async fn lock(
        &self,
        name: impl Into<Vec<u8>>,
        lease: i64,
        wait: Option<Duration>,
    ) -> Result<LockResponse, Error> {
        let req = LockRequest {
            name: name.into(),
            lease,
        };
        self.transport
            .unary("/v3/lock/lock", &req, Retry::IfUnsent, Client::waiting(wait))
            .await
    }

    /// Releases a lock (a key that is gone already is fine).
    pub async fn unlock(&self, key: impl Into<Vec<u8>>) -> Result<UnlockResponse, Error> {
        let req = UnlockRequest { key: key.into() };
        self.unary("/v3/lock/unlock", &req, Retry::IfUnsent).await
    }

    /// Waits until this client leads the election `name` with `value`,
    /// under `lease` (0: the server grants a lease of 60 s), at most `wait`.
    pub async fn campaign(
        &self,
        name: impl Into<Vec<u8>>,
        lease: i64,
        value: impl Into<Vec<u8>>,
        wait: Option<Duration>,
    ) -> Result<CampaignResponse, Error> {
        let req = CampaignRequest {
            name: name.into(),
            lease,
            value: value.into(),
        };
        self.transport
            .unary("/v3/election/campaign", &req, Retry::IfUnsent, Client::waiting(wait))
            .await
    }

    /// The leader announces a new value; fails with `election: not leader`
    /// once it no longer leads.
    pub async fn proclaim(&self, leader: &LeaderKey, value: impl Into<Vec<u8>>) -> Result<ProclaimResponse, Error> {
        let req = ProclaimRequest {
            leader: Some(leader.clone()),
            value: value.into(),
        };
        self.unary("/v3/election/proclaim", &req, Retry::IfUnsent).await
    }

    /// The current leader's key-value; `election: no leader` if there is none.
    pub async fn leader(&self, name: impl Into<Vec<u8>>) -> Result<LeaderResponse, Error> {
        let req = LeaderRequest { name: name.into() };
        self.unary("/v3/election/leader", &req, Retry::Always).await
    }

    /// The current leader's key-value, `None` when nobody leads (the
    /// service's `election: no leader` answer).
    pub async fn current_leader(&self, name: impl Into<Vec<u8>>) -> Result<Option<KeyValue>, Error> {
        match self.leader(name).await {
            Ok(r) => Ok(r.kv),
            Err(e) if e.to_string() == "election: no leader" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Steps down as leader (nothing happens if this key no longer leads).
    pub async fn resign(&self, leader: &LeaderKey) -> Result<ResignResponse, Error> {
        let req = ResignRequest {
            leader: Some(leader.clone()),
        };
        self.unary("/v3/election/resign", &req, Retry::IfUnsent).await
    }

    /// Follows the election `name`: every leader and value, each once, the
    /// stream (opened in the background) reopened on any member after a
    /// break. On native targets this must be called within a tokio runtime.
    pub fn observe(&self, name: impl Into<Vec<u8>>) -> Result<Observer, Error> {
        let req = LeaderRequest { name: name.into() };
        let body = Bytes::from(serde_json::to_vec(&req).map_err(|e| Error::InvalidArgument(e.to_string()))?);
        let state = ObserveState {
            client: self.clone(),
            body,
            lines: None,
            last: None,
        };
        Ok(Feed::spawn(futures_util::stream::unfold(state, |mut st| async move {
            let next = st.next().await;
            next.map(|r| (r, st))
        })))
    }
}

/// An observe stream and what it delivered last.
struct ObserveState {
    client: Client,
    body: Bytes,
    lines: Option<Lines>,
    /// The key and revision of the last answer (a reopened stream starts
    /// with the leader as it stands, which may have been delivered).
    last: Option<(Vec<u8>, i64)>,
}

impl ObserveState {
    async fn next(&mut self) -> Option<Result<LeaderResponse, Error>> {
        let mut pause = REOPEN_START;
        loop {
            let Some(lines) = self.lines.as_mut() else {
                // Opened in the background: etcd's gateway answers only once
                // the election has a leader.
                let opened = self
                    .client
                    .transport
                    .call(
                        "/v3/election/observe",
                        &self.body,
                        Retry::IfUnsent,
                        true,
                        Client::waiting(None),
                    )
                    .await;
                match opened {
                    Ok(Reply::Stream(resp)) => self.lines = Some(Lines::new(resp)),
                    Ok(Reply::Body(_)) => unreachable!("streaming calls return the response unread"),
                    Err(e) if e.kind() == super::ErrorKind::Unavailable || e.kind() == super::ErrorKind::Timeout => {
                        rt::sleep(pause).await;
                        pause = (pause * 2).min(REOPEN_CAP);
                    }
                    Err(e) => return Some(Err(e)),
                }
                continue;
            };
            match lines.next::<LeaderResponse>("observe").await {
                Ok(Some(resp)) => {
                    let seen = resp.kv.as_ref().map(|kv| (kv.key.clone(), kv.mod_revision));
                    if seen.is_some() && seen == self.last {
                        continue;
                    }
                    self.last = seen;
                    return Some(Ok(resp));
                }
                Ok(None) => self.lines = None,
                Err(e) if e.kind() == super::ErrorKind::Unavailable || matches!(e, Error::Decode(_)) => {
                    tracing::debug!(error = %e, "observe stream broke; reopening");
                    self.lines = None;
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
