//! `Lease`: grant, revoke, keep-alive, time-to-live, list; and expiry.
//!
//! What leases exist is state-machine data (granted and revoked through
//! the log). When they expire is this member's decision, from its own
//! clock: [`EtcdService::expire_leases`] proposes a revoke for each lease
//! past its deadline, so expiry reaches every member as a logged write.

use std::time::{Duration, Instant};

use super::auth::{checked_at, require};
use super::{Caller, EtcdService};
use crate::api::concordpb::log_request::Request as LogOp;
use crate::api::error::EtcdError;
use crate::api::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse, LeaseRevokeRequest,
    LeaseRevokeResponse, LeaseStatus, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use crate::auth::Access;
use crate::lease::{MAX_LEASE_TTL, MIN_LEASE_TTL};
use crate::state_machine::WriteResponse;

fn ttl_duration(ttl: i64) -> Duration {
    Duration::from_secs(ttl.max(0) as u64)
}

fn random_lease_id() -> i64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS provides randomness");
    (u64::from_le_bytes(b) >> 1).max(1) as i64
}

impl EtcdService {
    /// `Lease.LeaseGrant`: TTL raised to the minimum, refused above the
    /// maximum; an ID is chosen here (before logging) if the client gave none.
    pub async fn lease_grant(&self, mut req: LeaseGrantRequest) -> Result<LeaseGrantResponse, EtcdError> {
        if req.ttl > MAX_LEASE_TTL {
            return Err(EtcdError::LeaseTtlTooLarge);
        }
        req.ttl = req.ttl.max(MIN_LEASE_TTL);
        let limit = self.cfg.max_leases;
        if self.state.with(|sm| sm.lessor.len()) >= limit {
            return Err(EtcdError::TooManyLeases { limit });
        }
        self.check_quota(prost::Message::encoded_len(&req)).await?;
        if req.id == 0 {
            req.id = loop {
                let id = random_lease_id();
                if !self.state.with(|sm| sm.lessor.get(id).is_some()) {
                    break id;
                }
            };
        }
        let (id, ttl) = (req.id, req.ttl);
        let r = self
            .write(LogOp::LeaseGrant(req), 0, |r| match r {
                WriteResponse::LeaseGrant(r) => Ok(r),
                other => Err(other),
            })
            .await?;
        self.deadlines.lock().insert(id, Instant::now() + ttl_duration(ttl));
        Ok(r)
    }

    /// Checks `caller` may write every key attached to lease `id`.
    fn check_lease_keys(&self, caller: &Caller, id: i64) -> Result<u64, EtcdError> {
        let who = self.identify(caller)?;
        if who.is_some() {
            let keys: Vec<Vec<u8>> = self
                .state
                .with(|sm| sm.lessor.get(id).map(|l| l.keys.iter().cloned().collect()))
                .unwrap_or_default();
            for k in keys {
                require(&self.state, &who, &k, &[], Access::Write)?;
            }
        }
        Ok(checked_at(&who))
    }

    /// `Lease.LeaseRevoke`: deletes the attached keys in one revision
    /// (while auth is on, the caller must be allowed to write each).
    pub async fn lease_revoke(
        &self,
        caller: &Caller,
        req: LeaseRevokeRequest,
    ) -> Result<LeaseRevokeResponse, EtcdError> {
        let id = req.id;
        let checked = self.check_lease_keys(caller, id)?;
        let r = self
            .write(LogOp::LeaseRevoke(req), checked, |r| match r {
                WriteResponse::LeaseRevoke(r) => Ok(r),
                other => Err(other),
            })
            .await;
        if matches!(r, Ok(_) | Err(EtcdError::LeaseNotFound)) {
            self.deadlines.lock().remove(&id);
        }
        r
    }

    /// One keep-alive, on the member that decides expiry: on a follower it
    /// is forwarded to the leader. An unknown or already expired lease is
    /// answered with TTL 0, as etcd does.
    pub async fn lease_keep_alive(&self, id: i64) -> Result<LeaseKeepAliveResponse, EtcdError> {
        if self.node.is_leader() {
            return Ok(self.renew(id));
        }
        let leader = self.state.leader();
        if leader == 0 {
            return Err(EtcdError::NoLeader);
        }
        let forward = self.forwarder.lock().clone().ok_or(EtcdError::NoLeader)?;
        let ttl = forward.keep_alive(leader, id).await?;
        Ok(LeaseKeepAliveResponse {
            header: self.header(self.state.current_revision()),
            id,
            ttl,
        })
    }

    /// Renews lease `id` here (this member decides expiry).
    pub fn renew(&self, id: i64) -> LeaseKeepAliveResponse {
        let ttl = self.state.with(|sm| sm.lessor.get(id).map(|l| l.ttl));
        let now = Instant::now();
        let ttl = ttl.filter(|ttl| {
            let mut deadlines = self.deadlines.lock();
            let deadline = deadlines.entry(id).or_insert(now + ttl_duration(*ttl));
            if *deadline <= now {
                return false; // expired: its revoke is on the way
            }
            *deadline = now + ttl_duration(*ttl);
            true
        });
        if ttl.is_some() {
            crate::metrics::LEASES_RENEWED.inc();
        }
        LeaseKeepAliveResponse {
            header: self.header(self.state.current_revision()),
            id,
            ttl: ttl.unwrap_or(0),
        }
    }

    /// `Lease.LeaseTimeToLive`: remaining seconds (rounded down), granted
    /// TTL, and the attached keys if asked (while auth is on, the caller
    /// must then be allowed to write each); TTL -1 for an unknown lease.
    pub async fn lease_time_to_live(
        &self,
        caller: &Caller,
        req: &LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, EtcdError> {
        if req.keys {
            self.check_lease_keys(caller, req.id)?;
        }
        if self.node.is_leader() {
            return Ok(self.time_to_live(req));
        }
        // Only the leader knows how long a lease has left.
        let leader = self.state.leader();
        if leader == 0 {
            return Err(EtcdError::NoLeader);
        }
        let forward = self.forwarder.lock().clone().ok_or(EtcdError::NoLeader)?;
        let mut resp = forward.time_to_live(leader, *req).await?;
        resp.header = self.header(self.state.current_revision());
        Ok(resp)
    }

    /// A lease's time to live as this member (the leader) knows it.
    pub fn time_to_live(&self, req: &LeaseTimeToLiveRequest) -> LeaseTimeToLiveResponse {
        let found = self.state.with(|sm| {
            sm.lessor.get(req.id).map(|l| {
                (
                    l.ttl,
                    if req.keys {
                        l.keys.iter().cloned().collect()
                    } else {
                        Vec::new()
                    },
                )
            })
        });
        let header = self.header(self.state.current_revision());
        match found {
            None => LeaseTimeToLiveResponse {
                header,
                id: req.id,
                ttl: -1,
                ..Default::default()
            },
            Some((granted, keys)) => {
                let remaining = self.deadlines.lock().get(&req.id).map_or(granted, |d| {
                    d.saturating_duration_since(Instant::now()).as_secs() as i64
                });
                LeaseTimeToLiveResponse {
                    header,
                    id: req.id,
                    ttl: remaining,
                    granted_ttl: granted,
                    keys,
                }
            }
        }
    }

    /// `Lease.LeaseLeases`.
    pub fn lease_leases(&self) -> LeaseLeasesResponse {
        let leases = self
            .state
            .with(|sm| sm.lessor.iter().map(|(id, _)| LeaseStatus { id }).collect());
        LeaseLeasesResponse {
            header: self.header(self.state.current_revision()),
            leases,
        }
    }

    /// Revokes, through the log, every lease past its deadline. Returns how
    /// many were revoked. The server calls it periodically.
    pub async fn expire_leases(&self) -> usize {
        let now = Instant::now();
        if !self.node.is_leader() {
            *self.leading.lock() = false;
            return 0;
        }
        {
            // A member that just took over gives every lease a full TTL
            // (as etcd's new leader does); leases granted through another
            // member get their deadline here.
            let mut leading = self.leading.lock();
            let mut deadlines = self.deadlines.lock();
            let leases: Vec<(i64, i64)> = self
                .state
                .with(|sm| sm.lessor.iter().map(|(id, l)| (id, l.ttl)).collect());
            if !*leading {
                deadlines.clear();
                *leading = true;
            }
            deadlines.retain(|id, _| leases.iter().any(|(l, _)| l == id));
            for (id, ttl) in leases {
                deadlines.entry(id).or_insert(now + ttl_duration(ttl));
            }
        }
        let expired: Vec<i64> = self
            .deadlines
            .lock()
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(id, _)| *id)
            .collect();
        let mut revoked = 0;
        for id in expired {
            match self.lease_revoke(&Caller::member(), LeaseRevokeRequest { id }).await {
                Ok(_) => revoked += 1,
                Err(EtcdError::LeaseNotFound) => {}
                Err(e) => tracing::warn!(lease = id, error = %e, "expired lease not revoked yet"),
            }
        }
        revoked
    }
}
