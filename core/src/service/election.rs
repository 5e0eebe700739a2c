//! `v3lockpb.Lock` and `v3electionpb.Election`, decided on the server over
//! the KV and lease services with the key layout etcd's client recipes use,
//! so that callers of these services and clients running the recipes
//! themselves (etcdctl's `lock` and `elect`, PyPI `etcd3`'s Lock, npm
//! `etcd3`'s election) wait in one queue:
//!
//! - a contender writes `<name>/<lease ID in hex>` under its lease (or keeps
//!   the key it already has);
//! - it holds the lock, or leads, once no key under `<name>/` has a lower
//!   create revision: it waits for the deletion of the key just ahead of
//!   it, then looks again;
//! - the key's create revision is the fencing token: a write guarded by
//!   `create_revision(key) == token` succeeds only while the holder holds.
//!
//! Every read and write is made as the caller, with its permissions.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Caller, EtcdService};
use crate::api::error::{Code, EtcdError};
use crate::api::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::api::etcdserverpb::range_request::{SortOrder, SortTarget};
use crate::api::etcdserverpb::request_op::Request as Op;
use crate::api::etcdserverpb::response_op::Response as OpResponse;
use crate::api::etcdserverpb::watch_create_request::FilterType;
use crate::api::etcdserverpb::{
    Compare, DeleteRangeRequest, LeaseGrantRequest, PutRequest, RangeRequest, RequestOp, ResponseHeader, TxnRequest,
    WatchCreateRequest,
};
use crate::api::keys::prefix_end;
use crate::api::mvccpb::event::EventType;
use crate::api::mvccpb::{Event, KeyValue};
use crate::api::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderKey, LeaderRequest, LeaderResponse, ProclaimRequest, ProclaimResponse,
    ResignRequest, ResignResponse,
};
use crate::api::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse};

/// The TTL of the lease granted for a `Lock` without one (etcd grants one too).
const IMPLICIT_LEASE_TTL: i64 = 60;
/// How many leader changes an `Observe` stream holds for a slow reader.
const OBSERVE_BUFFER: usize = 16;

/// etcd's election errors: plain errors on etcd's side, so code Unknown.
fn election_error(message: &str) -> EtcdError {
    EtcdError::Other {
        code: Code::Unknown,
        message: message.into(),
    }
}

fn no_leader() -> EtcdError {
    election_error("election: no leader")
}

fn not_leader() -> EtcdError {
    election_error("election: not leader")
}

fn session_expired() -> EtcdError {
    election_error("concurrency: session expired")
}

/// `<name>/`, under which contenders' keys live.
fn queue_prefix(name: &[u8]) -> Vec<u8> {
    let mut p = name.to_vec();
    p.push(b'/');
    p
}

/// A contender's key: `<name>/<lease in hex>`.
fn contender_key(name: &[u8], lease: i64) -> Vec<u8> {
    let mut k = queue_prefix(name);
    k.extend_from_slice(format!("{lease:x}").as_bytes());
    k
}

fn create_revision_is(key: &[u8], rev: i64) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Create as i32,
        key: key.to_vec(),
        range_end: Vec::new(),
        target_union: Some(TargetUnion::CreateRevision(rev)),
    }
}

fn op(request: Op) -> RequestOp {
    RequestOp { request: Some(request) }
}

/// Deletes the key of a contender that gave up (its caller went away)
/// before it got its turn, as etcd's recipes do.
struct Withdraw {
    svc: Arc<EtcdService>,
    caller: Caller,
    key: Vec<u8>,
    armed: bool,
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (svc, caller) = (Arc::clone(&self.svc), self.caller.clone());
        let req = DeleteRangeRequest {
            key: std::mem::take(&mut self.key),
            ..Default::default()
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = svc.delete_range(&caller, req).await {
                    tracing::debug!(error = %e, "withdrawing a lock or election key failed");
                }
            });
        }
    }
}

impl EtcdService {
    /// Writes `key` (under `lease`, with `value`) unless it exists. Returns
    /// the key-value as it stands and whether this call created it.
    async fn enqueue(&self, caller: &Caller, key: &[u8], lease: i64, value: &[u8]) -> Result<KeyValue, EtcdError> {
        let txn = TxnRequest {
            compare: vec![create_revision_is(key, 0)],
            success: vec![
                op(Op::RequestPut(PutRequest {
                    key: key.to_vec(),
                    value: value.to_vec(),
                    lease,
                    ..Default::default()
                })),
                op(Op::RequestRange(RangeRequest {
                    key: key.to_vec(),
                    ..Default::default()
                })),
            ],
            failure: vec![op(Op::RequestRange(RangeRequest {
                key: key.to_vec(),
                ..Default::default()
            }))],
        };
        let resp = self.txn(caller, txn).await?;
        let kv = resp
            .responses
            .into_iter()
            .filter_map(|r| match r.response {
                Some(OpResponse::ResponseRange(r)) => r.kvs.into_iter().next(),
                _ => None,
            })
            .next();
        kv.ok_or_else(session_expired)
    }

    /// Waits until no key under `prefix` was created before `rev`: each
    /// round waits for the deletion of the key just ahead, then looks again.
    async fn wait_turn(&self, caller: &Caller, prefix: &[u8], rev: i64) -> Result<i64, EtcdError> {
        loop {
            let ahead = self
                .range(
                    caller,
                    RangeRequest {
                        key: prefix.to_vec(),
                        range_end: prefix_end(prefix),
                        max_create_revision: rev - 1,
                        sort_order: SortOrder::Descend as i32,
                        sort_target: SortTarget::Create as i32,
                        limit: 1,
                        ..Default::default()
                    },
                )
                .await?;
            let at = ahead.header.as_ref().map_or(0, |h| h.revision);
            let Some(kv) = ahead.kvs.into_iter().next() else {
                return Ok(at);
            };
            self.wait_deleted(&kv.key, at + 1).await?;
        }
    }

    /// Waits for a delete of `key` at `from` or later.
    async fn wait_deleted(&self, key: &[u8], from: i64) -> Result<(), EtcdError> {
        self.next_event(key, &[], from, Some(FilterType::Noput))
            .await
            .map(|_| ())
    }

    /// Whether `key` still exists with create revision `rev`.
    async fn still_holds(&self, caller: &Caller, key: &[u8], rev: i64) -> Result<Option<ResponseHeader>, EtcdError> {
        let r = self
            .range(
                caller,
                RangeRequest {
                    key: key.to_vec(),
                    ..Default::default()
                },
            )
            .await?;
        let holds = r.kvs.first().is_some_and(|kv| kv.create_revision == rev);
        Ok(holds.then_some(r.header).flatten())
    }

    /// Queues for `name` with `key` and waits for the turn; a caller that
    /// goes away first leaves the queue. Returns the key's create revision
    /// and the header at the turn.
    async fn contend(
        self: &Arc<Self>,
        caller: &Caller,
        name: &[u8],
        lease: i64,
        value: &[u8],
        proclaim: bool,
    ) -> Result<(Vec<u8>, KeyValue, ResponseHeader), EtcdError> {
        let key = contender_key(name, lease);
        let mut kv = self.enqueue(caller, &key, lease, value).await?;
        if proclaim && kv.value != value {
            // Campaigning again with the key it has: the new value counts.
            self.put(
                caller,
                PutRequest {
                    key: key.clone(),
                    value: value.to_vec(),
                    lease,
                    ..Default::default()
                },
            )
            .await?;
            kv.value = value.to_vec();
        }
        let mut withdraw = Withdraw {
            svc: Arc::clone(self),
            caller: caller.clone(),
            key: key.clone(),
            armed: true,
        };
        self.wait_turn(caller, &queue_prefix(name), kv.create_revision).await?;
        withdraw.armed = false;
        // The lease may have run out while it waited.
        let header = self
            .still_holds(caller, &key, kv.create_revision)
            .await?
            .ok_or_else(session_expired)?;
        Ok((key, kv, header))
    }

    /// `Lock.Lock`: waits until the caller holds the lock `name` under
    /// `lease` (without one: a lease of 60 s is granted, as etcd does).
    pub async fn lock(self: &Arc<Self>, caller: &Caller, req: LockRequest) -> Result<LockResponse, EtcdError> {
        let lease = self.lease_or_grant(req.lease).await?;
        let (key, _, header) = self.contend(caller, &req.name, lease, &[], false).await?;
        Ok(LockResponse {
            header: Some(header),
            key,
        })
    }

    /// `Lock.Unlock`: deletes the lock's key (a key that is gone already is fine).
    pub async fn unlock(&self, caller: &Caller, req: UnlockRequest) -> Result<UnlockResponse, EtcdError> {
        let r = self
            .delete_range(
                caller,
                DeleteRangeRequest {
                    key: req.key,
                    ..Default::default()
                },
            )
            .await?;
        Ok(UnlockResponse { header: r.header })
    }

    /// `Election.Campaign`: waits until the caller leads `name`, its value
    /// `value`, under `lease`.
    pub async fn campaign(
        self: &Arc<Self>,
        caller: &Caller,
        req: CampaignRequest,
    ) -> Result<CampaignResponse, EtcdError> {
        let lease = self.lease_or_grant(req.lease).await?;
        let (key, kv, header) = self.contend(caller, &req.name, lease, &req.value, true).await?;
        Ok(CampaignResponse {
            header: Some(header),
            leader: Some(LeaderKey {
                name: req.name,
                key,
                rev: kv.create_revision,
                lease,
            }),
        })
    }

    /// `Election.Proclaim`: the leader announces a new value; refused
    /// (`election: not leader`) unless the caller still leads.
    pub async fn proclaim(&self, caller: &Caller, req: ProclaimRequest) -> Result<ProclaimResponse, EtcdError> {
        let leader = req
            .leader
            .ok_or_else(|| election_error("\"leader\" field must be provided"))?;
        let txn = TxnRequest {
            compare: vec![create_revision_is(&leader.key, leader.rev)],
            success: vec![op(Op::RequestPut(PutRequest {
                key: leader.key,
                value: req.value,
                lease: leader.lease,
                ..Default::default()
            }))],
            failure: Vec::new(),
        };
        let resp = self.txn(caller, txn).await?;
        if !resp.succeeded {
            return Err(not_leader());
        }
        Ok(ProclaimResponse { header: resp.header })
    }

    /// `Election.Resign`: the leader steps down (its key is deleted); a
    /// caller that no longer leads changes nothing.
    pub async fn resign(&self, caller: &Caller, req: ResignRequest) -> Result<ResignResponse, EtcdError> {
        let leader = req
            .leader
            .ok_or_else(|| election_error("\"leader\" field must be provided"))?;
        let txn = TxnRequest {
            compare: vec![create_revision_is(&leader.key, leader.rev)],
            success: vec![op(Op::RequestDeleteRange(DeleteRangeRequest {
                key: leader.key,
                ..Default::default()
            }))],
            failure: Vec::new(),
        };
        let resp = self.txn(caller, txn).await?;
        Ok(ResignResponse { header: resp.header })
    }

    /// The leader's key-value (the key under `<name>/` created first).
    async fn leader_kv(&self, caller: &Caller, name: &[u8]) -> Result<(Option<KeyValue>, i64), EtcdError> {
        let prefix = queue_prefix(name);
        let r = self
            .range(
                caller,
                RangeRequest {
                    key: prefix.clone(),
                    range_end: prefix_end(&prefix),
                    sort_order: SortOrder::Ascend as i32,
                    sort_target: SortTarget::Create as i32,
                    limit: 1,
                    ..Default::default()
                },
            )
            .await?;
        let rev = r.header.as_ref().map_or(0, |h| h.revision);
        Ok((r.kvs.into_iter().next(), rev))
    }

    /// `Election.Leader`: the current leader's key-value.
    pub async fn leader(&self, caller: &Caller, req: LeaderRequest) -> Result<LeaderResponse, EtcdError> {
        let (kv, rev) = self.leader_kv(caller, &req.name).await?;
        let kv = kv.ok_or_else(no_leader)?;
        Ok(LeaderResponse {
            header: self.header(rev),
            kv: Some(kv),
        })
    }

    /// `Election.Observe`: the leader now (once there is one), then every
    /// change: a new value proclaimed, a new leader. Ends when the receiver
    /// is dropped. Checked as a read of `<name>/` when it starts.
    pub fn observe(
        self: &Arc<Self>,
        caller: &Caller,
        req: LeaderRequest,
    ) -> Result<mpsc::Receiver<Result<LeaderResponse, EtcdError>>, EtcdError> {
        let prefix = queue_prefix(&req.name);
        self.check(caller, &prefix, &prefix_end(&prefix), crate::auth::Access::Read)?;
        let (tx, rx) = mpsc::channel(OBSERVE_BUFFER);
        let svc = Arc::clone(self);
        let caller = caller.clone();
        let reader_gone = tx.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = svc.observe_loop(&caller, &req.name, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        // The loop may wait long for a change: stop it once nobody reads.
        tokio::spawn(async move {
            reader_gone.closed().await;
            task.abort();
        });
        Ok(rx)
    }

    async fn observe_loop(
        &self,
        caller: &Caller,
        name: &[u8],
        tx: &mpsc::Sender<Result<LeaderResponse, EtcdError>>,
    ) -> Result<(), EtcdError> {
        let prefix = queue_prefix(name);
        loop {
            let (leader, at) = self.leader_kv(caller, name).await?;
            let Some(mut kv) = leader else {
                // No leader: wait for the first key under the prefix.
                self.next_event(&prefix, &prefix_end(&prefix), at + 1, Some(FilterType::Nodelete))
                    .await?;
                continue;
            };
            loop {
                let resp = LeaderResponse {
                    header: self.header(kv.mod_revision),
                    kv: Some(kv.clone()),
                };
                if tx.send(Ok(resp)).await.is_err() {
                    return Ok(());
                }
                // The leader's next change: a new value, or its end.
                match self.next_change(&kv.key, kv.mod_revision.max(at) + 1).await? {
                    Some(newer) => kv = newer,
                    None => break,
                }
            }
        }
    }

    /// The next change of `key` from `from` on: `Some(kv)` for a put,
    /// `None` for a delete.
    async fn next_change(&self, key: &[u8], from: i64) -> Result<Option<KeyValue>, EtcdError> {
        let e = self.next_event(key, &[], from, None).await?;
        Ok(if e.r#type == EventType::Delete as i32 {
            None
        } else {
            e.kv
        })
    }

    /// The first event in `[key, range_end)` from revision `from` on, but
    /// for those `filter` leaves out.
    async fn next_event(
        &self,
        key: &[u8],
        range_end: &[u8],
        from: i64,
        filter: Option<FilterType>,
    ) -> Result<Event, EtcdError> {
        let (stream, mut rx) = self.state.watch();
        let req = WatchCreateRequest {
            key: key.to_vec(),
            range_end: range_end.to_vec(),
            start_revision: from,
            filters: filter.map(|f| vec![f as i32]).unwrap_or_default(),
            ..Default::default()
        };
        stream.create(&req, self.state.current_revision());
        while let Some(resp) = rx.recv().await {
            if resp.canceled {
                return Err(EtcdError::Compacted);
            }
            if let Some(e) = resp.events.into_iter().next() {
                return Ok(e);
            }
        }
        Err(EtcdError::Stopped)
    }

    /// The contender's lease: the one given (a lease that does not exist
    /// fails at the first write with etcd's `requested lease not found`),
    /// or, without one, a lease of 60 s granted now, as etcd does.
    async fn lease_or_grant(&self, lease: i64) -> Result<i64, EtcdError> {
        if lease != 0 {
            return Ok(lease);
        }
        let req = LeaseGrantRequest {
            ttl: IMPLICIT_LEASE_TTL,
            id: 0,
        };
        Ok(self.lease_grant(req).await?.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_recipes_layout() {
        assert_eq!(
            contender_key(b"job", 0x694da215ad6f7907),
            b"job/694da215ad6f7907".to_vec()
        );
        assert_eq!(prefix_end(&queue_prefix(b"l")), b"l0".to_vec());
    }
}
