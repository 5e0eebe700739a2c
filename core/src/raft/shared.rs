//! What readers share with the write path: the state machine behind its
//! lock, the watcher hub, and the figures requests read without the lock.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;
use tokio::sync::oneshot;

use super::NodeError;
use crate::api::concordpb::LogRequest;
use crate::api::error::EtcdError;
use crate::api::etcdserverpb::{AlarmType, RangeRequest, RangeResponse, ResponseHeader};
use crate::api::mvccpb::{Event, KeyValue};
use crate::mvcc::RangePlan;
use crate::state_machine::{ApplyError, StateMachine, WriteResponse};
use crate::storage::{ReadView, Storage, StorageError};
use crate::watch::{History, Hub, HubConfig, WatchReceiver, WatchStream};

/// Where a proposal's answer goes.
pub(crate) type Reply = oneshot::Sender<Result<WriteResponse, EtcdError>>;

/// What readers share with the write loop.
pub struct State {
    pub(crate) sm: RwLock<StateMachine>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) storage: Storage,
    pub(crate) applied: AtomicU64,
    /// The last log index known committed (durable on a quorum).
    pub(crate) committed: AtomicU64,
    pub(super) db_in_use: AtomicU64,
    /// The member's ID.
    pub member_id: u64,
    /// The cluster's ID.
    pub cluster_id: u64,
    /// The current raft term (a single member starts a new one at each start).
    pub(crate) term: AtomicU64,
    /// The leader's member ID (0: none known).
    pub(crate) leader: AtomicU64,
    /// How many times a (new) leader became known since start.
    pub(crate) leader_changes: AtomicU64,
    /// Whether auth is enabled (bit 0) and the auth revision (the other
    /// bits), as last applied: every request asks, and must not wait for
    /// the state machine's lock while a batch is being applied.
    auth_gate: AtomicU64,
    /// The current revision, as last applied.
    revision: AtomicI64,
    /// The database file's size, as of the last apply.
    pub(super) db_size: AtomicU64,
    /// The raised alarms' kinds as bits (`1 << AlarmType`), as last applied.
    alarm_bits: AtomicU8,
    /// Peers' raft messages handed to the raft loop and not yet stepped.
    pub(crate) inbox: AtomicUsize,
}

/// Most peers' raft messages waiting for the raft loop; past it they are
/// dropped (raft sends again), so a flood from the peer port or a burst
/// the loop cannot keep up with does not grow the member.
pub const MAX_INBOX: usize = 8192;

impl State {
    /// Serves a range from the applied state. With one member every
    /// acknowledged write is applied, so this is linearizable.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, EtcdError> {
        let (plan, view) = self.range_plan(req)?;
        Ok(plan.fetch(&view, req)?)
    }

    /// The index half of a range, and a view of the stored values opened
    /// under the same lock (so it holds exactly the batches the index
    /// describes). The lock is released on return: reading the values
    /// ([`RangePlan::fetch`]) holds up no writer, however many there are.
    pub fn range_plan(&self, req: &RangeRequest) -> Result<(RangePlan, ReadView), EtcdError> {
        let sm = self.sm.read();
        let view = self.storage.read().map_err(|e| EtcdError::Internal(e.to_string()))?;
        Ok((sm.mvcc.range_plan(req)?, view))
    }

    /// The latest revision (as last applied; no lock taken).
    pub fn current_revision(&self) -> i64 {
        self.revision.load(Ordering::Acquire)
    }

    /// Whether auth is enabled, and the auth revision, as last applied.
    pub fn auth_gate(&self) -> (bool, u64) {
        let g = self.auth_gate.load(Ordering::Acquire);
        (g & 1 == 1, g >> 1)
    }

    /// Publishes what requests read without the state machine's lock
    /// (auth's gate, the current revision, the database's size);
    /// called with the lock held, after each change is applied.
    pub(crate) fn publish(&self, sm: &StateMachine) {
        self.auth_gate.store(auth_gate(sm), Ordering::Release);
        self.revision.store(sm.mvcc.current_revision(), Ordering::Release);
        self.db_size.store(self.storage.size(), Ordering::Relaxed);
        self.alarm_bits.store(alarm_bits(sm), Ordering::Release);
    }

    /// Whether an alarm of `kind` is raised on any member (as last applied;
    /// no lock taken).
    pub fn alarm_raised(&self, kind: AlarmType) -> bool {
        self.alarm_bits.load(Ordering::Acquire) & (1 << kind as u8) != 0
    }

    /// Rewrites the database file without its free pages (etcd's
    /// defragment). Writes and reads wait meanwhile, as etcd's do.
    pub fn defragment(&self) -> Result<(), StorageError> {
        let sm = self.sm.write();
        let before = self.storage.size();
        let started = Instant::now();
        self.storage.defragment()?;
        let after = self.storage.size();
        self.db_size.store(after, Ordering::Relaxed);
        self.db_in_use.store(self.storage.size_in_use()?, Ordering::Relaxed);
        drop(sm);
        tracing::info!(
            before,
            after,
            ms = started.elapsed().as_millis() as u64,
            "defragmented the backend"
        );
        Ok(())
    }

    /// Begins a consistent copy of the state machine for a snapshot file.
    pub fn snapshot_source(&self) -> Result<crate::storage::SnapshotSource, StorageError> {
        let sm = self.sm.read();
        self.storage.snapshot_source(&sm)
    }

    /// The hash of the key space's history up to `rev` (0: the current
    /// revision), the revision hashed, and the compaction revision; as
    /// etcd's HashKV refuses, a compacted or future revision is an error.
    pub fn hash_kv(&self, rev: i64) -> Result<(u32, i64, i64), EtcdError> {
        let internal = |e: StorageError| EtcdError::Internal(e.to_string());
        let (current, compacted, view) = {
            let sm = self.sm.read();
            let view = self.storage.hash_view().map_err(internal)?;
            (sm.mvcc.current_revision(), sm.mvcc.compact_revision(), view)
        };
        let rev = if rev == 0 { current } else { rev };
        if rev > current {
            return Err(EtcdError::FutureRev);
        }
        if rev < compacted {
            return Err(EtcdError::Compacted);
        }
        Ok((view.hash_kv(rev).map_err(internal)?, rev, compacted))
    }

    /// The hash of the whole replicated state.
    pub fn hash(&self) -> Result<u32, EtcdError> {
        let internal = |e: StorageError| EtcdError::Internal(e.to_string());
        let view = {
            let _sm = self.sm.read();
            self.storage.hash_view().map_err(internal)?
        };
        view.hash().map_err(internal)
    }

    /// Reads the state machine (leases, counters) under its read lock.
    pub fn with<T>(&self, f: impl FnOnce(&StateMachine) -> T) -> T {
        f(&self.sm.read())
    }

    /// Opens a watch stream.
    pub fn watch(&self) -> (WatchStream, WatchReceiver) {
        self.hub.open()
    }

    /// Keys in the key space (with history), and keys put and deleted
    /// since start.
    pub fn key_stats(&self) -> (usize, u64, u64) {
        let sm = self.sm.read();
        let (puts, deletes) = sm.mvcc.write_counts();
        (sm.mvcc.key_count(), puts, deletes)
    }

    /// Whether member `id` was removed from the cluster.
    pub fn is_removed(&self, id: u64) -> bool {
        self.sm.read().removed.contains(&id)
    }

    /// Number of watchers on this member.
    pub fn watcher_count(&self) -> usize {
        self.hub.watcher_count()
    }

    /// This member's watch streams and watchers, and how far behind.
    pub fn watch_stats(&self) -> crate::watch::HubStats {
        self.hub.stats()
    }

    /// The last applied log index.
    pub fn applied_index(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// The last log index known committed (etcd's
    /// `etcd_server_proposals_committed_total`).
    pub fn committed_index(&self) -> u64 {
        self.committed.load(Ordering::Acquire).max(self.applied_index())
    }

    /// The current raft term.
    pub fn term(&self) -> u64 {
        self.term.load(Ordering::Acquire)
    }

    /// How many times a new leader became known since this member
    /// started (etcd's `etcd_server_leader_changes_seen_total`).
    pub fn leader_changes(&self) -> u64 {
        self.leader_changes.load(Ordering::Relaxed)
    }

    /// The leader's member ID, 0 when none is known.
    pub fn leader(&self) -> u64 {
        self.leader.load(Ordering::Acquire)
    }

    /// Size of the state machine's database file, as of the last apply
    /// (every write asks, for the quota: no file system call each time).
    pub fn db_size(&self) -> u64 {
        self.db_size.load(Ordering::Relaxed)
    }

    /// Bytes of the database file in use, as of the last checkpoint.
    pub fn db_size_in_use(&self) -> u64 {
        self.db_in_use.load(Ordering::Relaxed)
    }
}

impl History for State {
    fn events(&self, from: i64, to: i64, max_bytes: usize) -> Result<(Vec<Event>, i64), EtcdError> {
        let sm = self.sm.read();
        let view = self.storage.read().map_err(|e| EtcdError::Internal(e.to_string()))?;
        Ok(sm.mvcc.history(&view, from, to, max_bytes)?)
    }

    fn prev_kv(&self, key: &[u8], rev: i64) -> Option<KeyValue> {
        let req = RangeRequest {
            key: key.to_vec(),
            revision: rev - 1,
            ..Default::default()
        };
        self.range(&req).ok()?.kvs.pop()
    }

    fn compact_revision(&self) -> i64 {
        self.sm.read().mvcc.compact_revision()
    }
}

pub(crate) fn apply_one(
    sm: &mut StateMachine,
    view: &mut crate::storage::WriteView<'_>,
    req: &LogRequest,
) -> Result<Result<WriteResponse, EtcdError>, StorageError> {
    let Some(op) = &req.request else {
        return Ok(Err(EtcdError::InvalidRequest("empty log request".into())));
    };
    let started = Instant::now();
    let res = match sm.apply(view, op, req.auth_revision) {
        Ok(r) => Ok(Ok(r)),
        Err(ApplyError::Refused(e)) => Ok(Err(e)),
        Err(ApplyError::Fatal(e)) => Err(StorageError::Io(std::io::Error::other(e))),
    };
    let took = started.elapsed();
    if took > crate::metrics::SLOW_APPLY {
        crate::metrics::SLOW_APPLIES.inc();
        tracing::warn!(
            request = crate::state_machine::op_name(op),
            origin = format_args!("{:x}", req.origin),
            took_ms = took.as_secs_f64() * 1e3,
            expected_ms = crate::metrics::SLOW_APPLY.as_secs_f64() * 1e3,
            "apply request took too long"
        );
    }
    res
}

/// The watcher hub's settings (from `NodeConfig`).
pub(super) struct WatchSettings {
    pub(super) progress_interval: std::time::Duration,
    pub(super) max_response_bytes: usize,
}

/// Who a member is as it starts, and where its log stands.
pub(super) struct Identity {
    pub(super) member_id: u64,
    pub(super) cluster_id: u64,
    pub(super) term: u64,
    pub(super) applied: u64,
    pub(super) leader: u64,
}

impl State {
    /// Records the identity, makes the start-up state durable, and builds
    /// the state readers share (with its watcher hub, whose header is
    /// filled in from `id`).
    pub(super) fn open(
        storage: Storage,
        mut sm: StateMachine,
        watch: WatchSettings,
        id: Identity,
    ) -> Result<Arc<State>, NodeError> {
        storage.set_identity(id.member_id, id.cluster_id, id.term)?;
        storage.checkpoint()?;
        let in_use = storage.size_in_use()?;
        sm.take_events(); // replayed changes happened before any watcher
        let hub = Arc::new(Hub::new(
            HubConfig {
                header: ResponseHeader {
                    cluster_id: id.cluster_id,
                    member_id: id.member_id,
                    revision: 0,
                    raft_term: id.term,
                },
                progress_interval: watch.progress_interval,
                max_response_bytes: watch.max_response_bytes,
            },
            sm.mvcc.current_revision(),
        ));
        let auth_gate = AtomicU64::new(auth_gate(&sm));
        let revision = AtomicI64::new(sm.mvcc.current_revision());
        let db_size = AtomicU64::new(storage.size());
        let alarm_bits = AtomicU8::new(alarm_bits(&sm));
        Ok(Arc::new(State {
            alarm_bits,
            db_size,
            auth_gate,
            revision,
            sm: RwLock::new(sm),
            hub,
            storage,
            applied: AtomicU64::new(id.applied),
            committed: AtomicU64::new(id.applied),
            db_in_use: AtomicU64::new(in_use),
            member_id: id.member_id,
            cluster_id: id.cluster_id,
            term: AtomicU64::new(id.term),
            leader: AtomicU64::new(id.leader),
            leader_changes: AtomicU64::new(u64::from(id.leader != 0)),
            inbox: AtomicUsize::new(0),
        }))
    }
}

/// The raised alarms' kinds, one bit each.
fn alarm_bits(sm: &StateMachine) -> u8 {
    sm.alarms.iter().fold(0, |b, &(_, kind)| b | 1u8 << (kind as u8 & 7))
}

/// Auth's on/off state (bit 0) and revision (the other bits), as one word.
fn auth_gate(sm: &StateMachine) -> u64 {
    (sm.auth.revision() << 1) | u64::from(sm.auth.enabled())
}
