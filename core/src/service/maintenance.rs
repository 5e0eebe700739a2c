//! `Maintenance`: alarms (and the space quota that raises NOSPACE),
//! defragmentation, the hashes members compare, snapshots, and the
//! corruption checks built on the hashes.

use tokio::sync::mpsc;

use super::{Caller, EtcdService};
use crate::api::concordpb::log_request::Request as LogOp;
use crate::api::error::EtcdError;
use crate::api::etcdserverpb::alarm_request::AlarmAction;
use crate::api::etcdserverpb::{
    AlarmMember, AlarmRequest, AlarmResponse, AlarmType, DefragmentResponse, HashKvRequest, HashKvResponse,
    HashResponse, SnapshotResponse,
};
use crate::state_machine::WriteResponse;

/// Snapshot chunks in flight between the reader thread and the client.
const SNAPSHOT_QUEUE: usize = 8;

/// What a corruption check found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The member whose hash disagrees (with the checking member's, or,
    /// at start, the member that checked).
    pub member_id: u64,
    /// The peer compared with.
    pub peer_id: u64,
    /// The revision both hashed.
    pub revision: i64,
    /// The two hashes: this member's, the peer's.
    pub hashes: (u32, u32),
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "found data inconsistency with peers: member {:x} hashes {} at revision {}, member {:x} hashes {}",
            self.member_id, self.hashes.0, self.revision, self.peer_id, self.hashes.1
        )
    }
}

impl EtcdService {
    /// Refuses a write that could grow the store while NOSPACE is raised,
    /// and raises NOSPACE (for this member, through the log, so every
    /// member refuses) when the backend would pass the quota, as etcd's
    /// quota check does before proposing.
    pub(crate) async fn check_quota(&self, encoded_len: usize) -> Result<(), EtcdError> {
        if self.state.alarm_raised(AlarmType::Corrupt) {
            return Err(EtcdError::Corrupt);
        }
        if self.state.alarm_raised(AlarmType::Nospace) {
            return Err(EtcdError::NoSpace);
        }
        if self.state.db_size() + encoded_len as u64 <= self.cfg.quota_backend_bytes {
            return Ok(());
        }
        tracing::warn!(
            db_size = self.state.db_size(),
            quota = self.cfg.quota_backend_bytes,
            "backend quota exceeded: raising the NOSPACE alarm"
        );
        let raise = AlarmRequest {
            action: AlarmAction::Activate as i32,
            member_id: self.state.member_id,
            alarm: AlarmType::Nospace as i32,
        };
        if let Err(e) = self.propose(LogOp::Alarm(raise), 0).await {
            tracing::warn!(error = %e, "the NOSPACE alarm could not be raised");
        }
        Err(EtcdError::NoSpace)
    }

    /// `Maintenance.Alarm` (root only while auth is on): GET lists the
    /// raised alarms (of the type asked for; NONE: all, as etcd);
    /// ACTIVATE and DEACTIVATE go through the log and answer the alarms
    /// they changed.
    pub async fn alarm(&self, caller: &Caller, req: AlarmRequest) -> Result<AlarmResponse, EtcdError> {
        let checked = self.check_admin(caller)?;
        let alarms = match req.action() {
            AlarmAction::Get => {
                self.node.read_barrier().await?;
                let mut all = self.state.with(|sm| sm.alarm_list());
                if req.alarm != AlarmType::None as i32 {
                    all.retain(|a| a.alarm == req.alarm);
                }
                all
            }
            AlarmAction::Activate | AlarmAction::Deactivate => {
                if req.action() == AlarmAction::Activate && req.alarm == AlarmType::None as i32 {
                    return Ok(AlarmResponse::default());
                }
                match self.propose(LogOp::Alarm(req), checked).await? {
                    WriteResponse::Alarm(changed) => changed,
                    other => return Err(super::unexpected(&other)),
                }
            }
        };
        // etcd 3.4 answers alarm requests without a header.
        Ok(AlarmResponse { header: None, alarms })
    }

    /// The raised alarms, as this member last applied them.
    pub fn alarms(&self) -> Vec<AlarmMember> {
        self.state.with(|sm| sm.alarm_list())
    }

    /// `Maintenance.Defragment` (root only while auth is on): this
    /// member's backend file is rewritten without its free pages.
    pub async fn defragment(&self, caller: &Caller) -> Result<DefragmentResponse, EtcdError> {
        self.check_admin(caller)?;
        let state = std::sync::Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || state.defragment())
            .await
            .map_err(|e| EtcdError::Internal(format!("defragment: {e}")))?
            .map_err(|e| EtcdError::Internal(format!("defragment: {e}")))?;
        // etcd 3.4 answers without a header.
        Ok(DefragmentResponse { header: None })
    }

    /// `Maintenance.HashKV` (root only while auth is on).
    pub async fn hash_kv(&self, caller: &Caller, req: HashKvRequest) -> Result<HashKvResponse, EtcdError> {
        self.check_admin(caller)?;
        self.local_hash_kv(req.revision).await
    }

    /// HashKV at `revision` (0: the current one) without an auth check: for
    /// peers comparing members.
    pub async fn local_hash_kv(&self, revision: i64) -> Result<HashKvResponse, EtcdError> {
        let state = std::sync::Arc::clone(&self.state);
        let (hash, rev, compacted) = tokio::task::spawn_blocking(move || state.hash_kv(revision))
            .await
            .map_err(|e| EtcdError::Internal(format!("hash: {e}")))??;
        Ok(HashKvResponse {
            header: self.header(self.state.current_revision()),
            hash,
            compact_revision: compacted,
            hash_revision: rev,
        })
    }

    /// `Maintenance.Hash` (root only while auth is on).
    pub async fn hash(&self, caller: &Caller) -> Result<HashResponse, EtcdError> {
        self.check_admin(caller)?;
        let state = std::sync::Arc::clone(&self.state);
        let hash = tokio::task::spawn_blocking(move || state.hash())
            .await
            .map_err(|e| EtcdError::Internal(format!("hash: {e}")))??;
        Ok(HashResponse {
            header: self.header(self.state.current_revision()),
            hash,
        })
    }

    /// `Maintenance.Snapshot` (root only while auth is on): the state
    /// machine as of now, as a snapshot file's bytes in chunks of about
    /// 64 KiB, each saying how many bytes follow it. The copy is read on
    /// a thread of its own; it stops when the receiver is dropped.
    pub fn snapshot(&self, caller: &Caller) -> Result<mpsc::Receiver<Result<SnapshotResponse, EtcdError>>, EtcdError> {
        self.check_admin(caller)?;
        let source = self
            .state
            .snapshot_source()
            .map_err(|e| EtcdError::Internal(format!("snapshot: {e}")))?;
        let header = self.header(self.state.current_revision());
        let (tx, rx) = mpsc::channel(SNAPSHOT_QUEUE);
        tokio::task::spawn_blocking(move || {
            let mut remaining = match source.len() {
                Ok(n) => n,
                Err(e) => {
                    let _ = tx.blocking_send(Err(EtcdError::Internal(format!("snapshot: {e}"))));
                    return;
                }
            };
            let started = std::time::Instant::now();
            let total = remaining;
            let mut send = |blob: Vec<u8>| {
                remaining = remaining.saturating_sub(blob.len() as u64);
                tx.blocking_send(Ok(SnapshotResponse {
                    header,
                    remaining_bytes: remaining,
                    blob,
                    version: super::ETCD_API_VERSION.into(),
                }))
                .is_ok()
            };
            match source.write(&mut send) {
                Ok(true) => tracing::info!(
                    bytes = total,
                    ms = started.elapsed().as_millis() as u64,
                    "sent a snapshot"
                ),
                Ok(false) => tracing::info!("snapshot receiver went away"),
                Err(e) => {
                    let _ = tx.blocking_send(Err(EtcdError::Internal(format!("snapshot: {e}"))));
                }
            }
        });
        Ok(rx)
    }

    /// The members to compare with (every other member with a known peer URL).
    fn peer_ids(&self) -> Vec<u64> {
        let me = self.state.member_id;
        self.state
            .with(|sm| sm.members.values().map(|m| m.id).filter(|&id| id != me).collect())
    }

    /// Compares this member's HashKV with each peer's at this member's
    /// revision (etcd's `--experimental-initial-corrupt-check`). Peers
    /// that cannot answer for that revision (behind, or compacted since)
    /// are skipped, as etcd skips them. On a mismatch the CORRUPT alarm is
    /// raised for this member and the mismatch returned.
    pub async fn check_initial_hash(&self) -> Result<(), Mismatch> {
        let Some(f) = self.forwarder.lock().clone() else {
            return Ok(());
        };
        let Ok(mine) = self.local_hash_kv(0).await else {
            return Ok(());
        };
        for peer in self.peer_ids() {
            match f.hash_kv(peer, mine.hash_revision).await {
                Ok(theirs) if theirs.compact_revision == mine.compact_revision && theirs.hash != mine.hash => {
                    let m = Mismatch {
                        member_id: self.state.member_id,
                        peer_id: peer,
                        revision: mine.hash_revision,
                        hashes: (mine.hash, theirs.hash),
                    };
                    tracing::error!(%m, "initial corruption check failed");
                    self.raise_corrupt(self.state.member_id).await;
                    return Err(m);
                }
                Ok(_) => tracing::info!(peer = %format!("{peer:x}"), "initial corruption check: hashes agree"),
                Err(e) => {
                    tracing::warn!(peer = %format!("{peer:x}"), error = %e, "initial corruption check skipped a peer")
                }
            }
        }
        Ok(())
    }

    /// The leader's periodic check (etcd's `--experimental-corrupt-check-time`):
    /// every peer's HashKV at the leader's revision; a peer that disagrees
    /// at the same compaction revision gets the CORRUPT alarm. Does
    /// nothing on a member that does not lead.
    pub async fn check_peer_hashes(&self) -> Vec<Mismatch> {
        let mut found = Vec::new();
        if !self.node.is_leader() || !self.node.is_replicated() {
            return found;
        }
        let Some(f) = self.forwarder.lock().clone() else {
            return found;
        };
        let Ok(mine) = self.local_hash_kv(0).await else {
            return found;
        };
        for peer in self.peer_ids() {
            match f.hash_kv(peer, mine.hash_revision).await {
                Ok(theirs) if theirs.compact_revision == mine.compact_revision && theirs.hash != mine.hash => {
                    let m = Mismatch {
                        member_id: peer,
                        peer_id: self.state.member_id,
                        revision: mine.hash_revision,
                        hashes: (theirs.hash, mine.hash),
                    };
                    tracing::error!(%m, "corruption check: a member disagrees with the leader");
                    self.raise_corrupt(peer).await;
                    found.push(m);
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(peer = %format!("{peer:x}"), error = %e, "corruption check skipped a peer"),
            }
        }
        found
    }

    /// Raises CORRUPT for `member_id`, trying for up to 15 s (a member
    /// that just started may not know its leader yet).
    async fn raise_corrupt(&self, member_id: u64) {
        let raise = AlarmRequest {
            action: AlarmAction::Activate as i32,
            member_id,
            alarm: AlarmType::Corrupt as i32,
        };
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            match self.propose(LogOp::Alarm(raise), 0).await {
                Ok(_) => return,
                Err(e @ (EtcdError::NoLeader | EtcdError::Timeout)) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "waiting to raise the CORRUPT alarm");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "the CORRUPT alarm could not be raised");
                    return;
                }
            }
        }
    }
}
