//! The member's write loop: group commit, then apply.
//!
//! One OS thread owns the log. It takes every proposal waiting, appends them
//! all with one fdatasync, applies them in one state-machine transaction
//! (holding the key space's write lock, so readers see whole batches), then
//! answers each. While it syncs, new proposals queue up and form the next
//! batch: under concurrency many requests share one fsync.

use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use prost::Message;
use tokio::sync::{oneshot, watch};

use super::log::{Entry, Log, LogError};
use raft::prelude::{ConfState, SnapshotMetadata};

use super::replica::{LogCore, MemberChange, RaftConfig, RaftLoop, RaftMsg};
use super::wal::RaftWal;
use super::{ApplyError, StateMachine, WriteResponse};
use crate::api::concordpb::LogRequest;
use crate::api::error::EtcdError;
use crate::api::etcdserverpb::{AlarmType, RangeRequest, RangeResponse, ResponseHeader};
use crate::api::mvccpb::{Event, KeyValue};
use crate::mvcc::RangePlan;
use crate::storage::{ReadView, Storage, StorageError};
use crate::watch::{History, Hub, HubConfig, WatchReceiver, WatchStream};

/// At most this many proposals share one batch.
const MAX_BATCH: usize = 4096;
/// A batch this large says proposals are arriving in a stream ...
const GATHER_FROM: usize = 4;
/// ... and the next one waits this long for more to join it.
const GATHER: Duration = Duration::from_micros(100);
/// Make the state machine durable (and free the log) after this many entries…
const CHECKPOINT_ENTRIES: u64 = 5_000;
/// …or this long after the last checkpoint.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// How often the bytes in use are recounted (it walks the whole database).
const SIZE_IN_USE_EVERY: Duration = Duration::from_secs(30);

/// Errors starting or running the write path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The state machine's storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A logged entry could not be decoded.
    #[error("log entry {0} cannot be decoded")]
    BadEntry(u64),
    /// Applying an entry failed in the backend.
    #[error("apply: {0}")]
    Apply(String),
    /// This member was removed from the cluster.
    #[error("this member was removed from the cluster")]
    Removed,
    /// The write thread could not be started.
    #[error("cannot start the write thread: {0}")]
    Thread(std::io::Error),
}

pub(crate) type Reply = oneshot::Sender<Result<WriteResponse, EtcdError>>;

/// How long a replicated write or linearizable read may wait for
/// agreement before the client hears `request timed out` (etcd: 5 s plus
/// the election timeout).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(7);

enum Msg {
    Propose(LogRequest, Reply),
    Stop(oneshot::Sender<()>),
}

/// Settings of a member's write path and watchers.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// How often watchers with `progress_notify` hear from a quiet stream.
    pub progress_interval: Duration,
    /// Fragmenting watchers split responses above this size.
    pub max_response_bytes: usize,
    /// Pages of the state machine's database kept in memory.
    pub backend_cache_bytes: usize,
    /// Whether the log waits for fdatasync before a write is acknowledged.
    /// `false` is etcd's `--unsafe-no-fsync`: faster, and a machine crash
    /// can lose acknowledged writes (a process crash cannot).
    pub fsync: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            progress_interval: Duration::from_secs(600),
            max_response_bytes: 1536 * 1024,
            backend_cache_bytes: 8 * 1024 * 1024,
            fsync: true,
        }
    }
}

/// What readers share with the write loop.
pub struct State {
    pub(crate) sm: RwLock<StateMachine>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) storage: Storage,
    pub(crate) applied: AtomicU64,
    /// The last log index known committed (durable on a quorum).
    pub(crate) committed: AtomicU64,
    db_in_use: AtomicU64,
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
    db_size: AtomicU64,
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

/// How writes reach the state machine.
enum WritePath {
    /// A single member: the local group-committed log.
    Local(mpsc::Sender<Msg>),
    /// A replicated member: raft.
    Raft(mpsc::Sender<RaftMsg>),
}

/// A running member's write path.
pub struct Node {
    path: WritePath,
    state: Arc<State>,
    fatal: watch::Receiver<Option<String>>,
    /// The write and watch-sync threads, joined by [`Node::stop`].
    threads: parking_lot::Mutex<Vec<thread::JoinHandle<()>>>,
}

fn decode(e: &Entry) -> Result<LogRequest, NodeError> {
    LogRequest::decode(e.payload.as_slice()).map_err(|_| NodeError::BadEntry(e.index))
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
            request = super::state_machine::op_name(op),
            origin = format_args!("{:x}", req.origin),
            took_ms = took.as_secs_f64() * 1e3,
            expected_ms = crate::metrics::SLOW_APPLY.as_secs_f64() * 1e3,
            "apply request took too long"
        );
    }
    res
}

/// Opens raft's log in `dir`: a new member's log starts at the snapshot
/// it joined from, or empty with `raft.voters` as the configuration.
/// `applied` is what the state machine holds durably.
fn open_raft_log(
    dir: &Path,
    raft: &RaftConfig,
    applied: u64,
    installed: Option<SnapshotMetadata>,
) -> Result<(RaftWal, LogCore), NodeError> {
    let join_point = |join: &crate::api::concordpb::JoinInfo| -> Result<SnapshotMetadata, NodeError> {
        let mut cs = ConfState::default();
        protobuf::Message::merge_from_bytes(&mut cs, &join.conf_state)
            .map_err(|e| NodeError::Apply(format!("join: {e}")))?;
        let mut meta = SnapshotMetadata {
            index: join.index,
            term: join.term,
            ..Default::default()
        };
        meta.set_conf_state(cs);
        Ok(meta)
    };
    let (mut wal, mut core) = RaftWal::open(dir, || match &raft.join {
        Some(join) => join_point(join),
        None if applied > 0 => Err(NodeError::Apply(
            "the state machine has data but raft's log is missing (a join that did not finish?): \
             remove the data directory and join again"
                .into(),
        )),
        None => {
            let mut meta = SnapshotMetadata::default();
            meta.set_conf_state(ConfState::from((raft.voters.clone(), vec![])));
            Ok(meta)
        }
    })?;
    if let Some(join) = &raft.join {
        // Whatever an earlier attempt left is void.
        core.start_at(join_point(join)?, true);
        core.hs.term = core.hs.term.max(join.term);
        core.hs.commit = join.index;
        wal.start_at(&core, true)?;
    }
    if applied > core.last() {
        // A snapshot from the leader was installed (its data and metadata
        // are durable together) but the member stopped before raft's log
        // recorded it: record it now, as the install would have.
        match installed.filter(|m| m.index == applied) {
            Some(meta) => {
                tracing::warn!(index = applied, "completing a snapshot install that a stop interrupted");
                core.start_at(meta.clone(), true);
                core.hs.commit = core.hs.commit.max(applied);
                core.hs.term = core.hs.term.max(meta.term);
                wal.start_at(&core, true)?;
            }
            None => {
                return Err(NodeError::Apply(format!(
                    "the state machine is at index {applied} but raft's log ends at {}",
                    core.last()
                )))
            }
        }
    }
    // Applied entries were committed; the recorded commit index may lag.
    core.hs.commit = core.hs.commit.max(applied);
    Ok((wal, core))
}

impl Node {
    /// Opens the member's data in `data_dir` (creating it), replays the log
    /// tail the state machine had not made durable, and starts the write
    /// loop.
    pub fn start(data_dir: &Path, cfg: NodeConfig) -> Result<Node, NodeError> {
        crate::fsync::create_dir_all(data_dir).map_err(StorageError::Io)?;
        let storage = Storage::open(&data_dir.join("db"), cfg.backend_cache_bytes)?;
        let meta = storage.meta()?;
        let mut sm = storage.load()?;
        let (mut log, tail) = Log::open(&data_dir.join("wal"), meta.applied_index + 1)?;
        log.set_fsync(cfg.fsync);
        let mut applied = meta.applied_index;
        if !tail.is_empty() {
            tracing::info!(entries = tail.len(), from = meta.applied_index + 1, "replaying log");
            applied = storage.write(|view| {
                let mut last = applied;
                for e in &tail {
                    let req = decode(e).map_err(|err| StorageError::Io(std::io::Error::other(err.to_string())))?;
                    let _ = apply_one(&mut sm, view, &req)?;
                    last = e.index;
                }
                view.set_applied(&sm.mvcc, last)?;
                Ok(last)
            })?;
        }
        let (member_id, cluster_id) = if meta.member_id == 0 {
            (random_id(), random_id())
        } else {
            (meta.member_id, meta.cluster_id)
        };
        let term = meta.term + 1;
        let identity = Identity {
            member_id,
            cluster_id,
            term,
            applied,
            leader: member_id,
        };
        let state = State::open(storage, sm, &cfg, identity)?;
        let sync_thread = spawn_watch_sync(&state)?;
        let (tx, rx) = mpsc::channel();
        let (fatal_tx, fatal) = watch::channel(None);
        let loop_state = Arc::clone(&state);
        let write_thread = thread::Builder::new()
            .name("concord-write".into())
            .spawn(move || {
                guarded("write path", &fatal_tx, || {
                    let mut w = WriteLoop {
                        state: loop_state,
                        log,
                        checkpoints: Checkpointer::new(applied),
                        last_batch: 0,
                    };
                    w.run(&rx)
                });
            })
            .map_err(NodeError::Thread)?;
        Ok(Node {
            path: WritePath::Local(tx),
            state,
            fatal,
            threads: parking_lot::Mutex::new(vec![write_thread, sync_thread]),
        })
    }

    /// Opens a replicated member's data in `data_dir` and starts its raft
    /// loop; messages for other members go through `raft.transport`.
    pub fn start_replicated(data_dir: &Path, cfg: NodeConfig, mut raft: RaftConfig) -> Result<Node, NodeError> {
        crate::fsync::create_dir_all(data_dir).map_err(StorageError::Io)?;
        let storage = Storage::open(&data_dir.join("db"), cfg.backend_cache_bytes)?;
        if let Some(join) = &raft.join {
            // A new member of a running cluster starts from a member's state.
            let snap = join.snapshot.clone().unwrap_or_default();
            storage.install(&snap, join.index)?;
            storage.checkpoint()?;
            tracing::info!(index = join.index, "joined a running cluster from a member's snapshot");
        }
        let meta = storage.meta()?;
        let sm = storage.load()?;
        if meta.member_id != 0 && raft.join.is_none() {
            // A restart: the member is who it was (an added member's ID
            // does not follow from the flags).
            raft.id = meta.member_id;
            raft.cluster_id = meta.cluster_id;
            raft.attrs.id = meta.member_id;
        }
        raft.transport.set_identity(raft.id, raft.cluster_id);
        for m in sm.members.values().filter(|m| m.id != raft.id) {
            if let Some(url) = m.peer_urls.first() {
                raft.transport.set_peer(m.id, Some(url.clone()));
            }
        }
        let identity = Identity {
            member_id: raft.id,
            cluster_id: raft.cluster_id,
            term: meta.term,
            applied: meta.applied_index,
            leader: 0,
        };
        let state = State::open(storage, sm, &cfg, identity)?;
        let installed = match state.storage.raft_snapshot()? {
            Some(b) => Some(
                protobuf::Message::parse_from_bytes(&b)
                    .map_err(|e| NodeError::Apply(format!("stored snapshot metadata: {e}")))?,
            ),
            None => None,
        };
        let (mut wal, core) = open_raft_log(&data_dir.join("raft"), &raft, meta.applied_index, installed)?;
        wal.set_fsync(cfg.fsync);
        let mut raft_loop = RaftLoop::new(core, wal, Arc::clone(&state), raft)?;
        let sync_thread = spawn_watch_sync(&state)?;
        let (tx, rx) = mpsc::channel();
        let (fatal_tx, fatal) = watch::channel(None);
        let raft_thread = thread::Builder::new()
            .name("concord-raft".into())
            .spawn(move || guarded("raft loop", &fatal_tx, || raft_loop.run(&rx)))
            .map_err(NodeError::Thread)?;
        Ok(Node {
            path: WritePath::Raft(tx),
            state,
            fatal,
            threads: parking_lot::Mutex::new(vec![raft_thread, sync_thread]),
        })
    }

    /// Whether this member decides lease expiry (a single member always;
    /// with raft, the leader).
    pub fn is_leader(&self) -> bool {
        match self.path {
            WritePath::Local(_) => true,
            WritePath::Raft(_) => self.state.leader() == self.state.member_id,
        }
    }

    /// Whether this member is part of a replicated cluster.
    pub fn is_replicated(&self) -> bool {
        matches!(self.path, WritePath::Raft(_))
    }

    /// Waits until this member has applied everything committed when the
    /// call was made (raft's ReadIndex, confirmed by a quorum), so a read
    /// after it is linearizable. Immediate on a single member.
    pub async fn read_barrier(&self) -> Result<(), EtcdError> {
        let WritePath::Raft(tx) = &self.path else {
            return Ok(());
        };
        let (done, rx) = oneshot::channel();
        tx.send(RaftMsg::ReadIndex(done)).map_err(|_| EtcdError::Stopped)?;
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(EtcdError::Stopped),
            Err(_) => Err(EtcdError::Timeout),
        }
    }

    /// Changes the cluster's membership; resolves once applied here.
    pub async fn change_members(&self, change: MemberChange) -> Result<(), EtcdError> {
        let WritePath::Raft(tx) = &self.path else {
            return Err(EtcdError::Unimplemented(
                "concord: membership changes need a member started with --initial-cluster".into(),
            ));
        };
        let (reply, rx) = oneshot::channel();
        tx.send(RaftMsg::ChangeMembers(change, reply))
            .map_err(|_| EtcdError::Stopped)?;
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(r) => r.map_err(|_| EtcdError::Stopped)?.map(|_| ()),
            Err(_) => Err(EtcdError::Timeout),
        }
    }

    /// Asks raft to hand leadership to `to` (this member must lead);
    /// `false` if `to` is not a voter.
    pub async fn transfer_leader(&self, to: u64) -> bool {
        let WritePath::Raft(tx) = &self.path else {
            return false;
        };
        let (ok, rx) = oneshot::channel();
        if tx.send(RaftMsg::TransferLeader(to, ok)).is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// What a member joining with `peer_urls` needs (encoded `JoinInfo`).
    pub async fn join_info(&self, peer_urls: Vec<String>) -> Result<Vec<u8>, EtcdError> {
        let WritePath::Raft(tx) = &self.path else {
            return Err(EtcdError::Unimplemented("concord: not a replicated member".into()));
        };
        let (reply, rx) = oneshot::channel();
        tx.send(RaftMsg::JoinInfo(peer_urls, reply))
            .map_err(|_| EtcdError::Stopped)?;
        rx.await.map_err(|_| EtcdError::Stopped)?
    }

    /// Hands a raft message from another member to the raft loop.
    /// Dropped when [`MAX_INBOX`] messages already wait.
    pub fn step(&self, msg: Vec<u8>) {
        if let WritePath::Raft(tx) = &self.path {
            if self.state.inbox.fetch_add(1, Ordering::AcqRel) >= MAX_INBOX {
                self.state.inbox.fetch_sub(1, Ordering::AcqRel);
                tracing::debug!("raft message dropped: the raft loop's inbox is full");
                return;
            }
            if tx.send(RaftMsg::Step(msg)).is_err() {
                self.state.inbox.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Tells raft a member could not be reached.
    pub fn report_unreachable(&self, to: u64) {
        if let WritePath::Raft(tx) = &self.path {
            let _ = tx.send(RaftMsg::Unreachable(to));
        }
    }

    /// A peer refused this member's messages because it was removed from
    /// the cluster: the member stops, as if it had applied its removal.
    pub fn report_removed(&self) {
        if let WritePath::Raft(tx) = &self.path {
            let _ = tx.send(RaftMsg::Removed);
        }
    }

    /// Tells raft whether a snapshot reached a member.
    pub fn report_snapshot(&self, to: u64, ok: bool) {
        if let WritePath::Raft(tx) = &self.path {
            let _ = tx.send(RaftMsg::SnapshotDone(to, ok));
        }
    }

    /// The state readers use.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Proposes a write; resolves once it is durable and applied (with
    /// raft: committed by a quorum and applied here).
    pub async fn propose(&self, req: LogRequest) -> Result<WriteResponse, EtcdError> {
        let _pending = crate::metrics::PROPOSALS_PENDING.track();
        let res = self.propose_inner(req).await;
        if let Err(EtcdError::Stopped | EtcdError::Timeout | EtcdError::NoLeader | EtcdError::Internal(_)) = &res {
            crate::metrics::PROPOSALS_FAILED.inc();
        }
        res
    }

    async fn propose_inner(&self, req: LogRequest) -> Result<WriteResponse, EtcdError> {
        let (reply, rx) = oneshot::channel();
        match &self.path {
            WritePath::Local(tx) => {
                tx.send(Msg::Propose(req, reply)).map_err(|_| EtcdError::Stopped)?;
                rx.await.map_err(|_| EtcdError::Stopped)?
            }
            WritePath::Raft(tx) => {
                tx.send(RaftMsg::Propose(req, reply)).map_err(|_| EtcdError::Stopped)?;
                match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
                    Ok(r) => r.map_err(|_| EtcdError::Stopped)?,
                    Err(_) => Err(EtcdError::Timeout),
                }
            }
        }
    }

    /// Resolves with the reason if the write path fails for good.
    pub fn fatal(&self) -> watch::Receiver<Option<String>> {
        self.fatal.clone()
    }

    /// Stops the write loop after the writes already queued, with a final
    /// checkpoint, and the watch-sync thread; returns once both are gone.
    pub async fn stop(&self) {
        let (done, rx) = oneshot::channel();
        let sent = match &self.path {
            WritePath::Local(tx) => tx.send(Msg::Stop(done)).is_ok(),
            WritePath::Raft(tx) => tx.send(RaftMsg::Stop(done)).is_ok(),
        };
        if sent {
            let _ = rx.await;
        }
        self.state.hub.stop();
        for t in self.threads.lock().drain(..) {
            // Both threads are finishing by now: joining takes no time.
            let _ = t.join();
        }
    }
}

/// Who a member is as it starts, and where its log stands.
struct Identity {
    member_id: u64,
    cluster_id: u64,
    term: u64,
    applied: u64,
    leader: u64,
}

impl State {
    /// Records the identity, makes the start-up state durable, and builds
    /// the state readers share (with its watcher hub).
    fn open(storage: Storage, mut sm: StateMachine, cfg: &NodeConfig, id: Identity) -> Result<Arc<State>, NodeError> {
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
                progress_interval: cfg.progress_interval,
                max_response_bytes: cfg.max_response_bytes,
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

/// Runs a member's write thread: a failure, or a panic, is reported on
/// `fatal` (the server then stops with an error, so a supervisor restarts
/// it), never swallowed.
fn guarded(what: &str, fatal: &watch::Sender<Option<String>>, run: impl FnOnce() -> Result<(), NodeError>) {
    let reason = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            format!("{what} panicked: {msg}")
        }
    };
    tracing::error!(error = %reason, "{what} failed; no more writes are accepted");
    let _ = fatal.send(Some(reason));
}

/// The thread that catches slow watchers up from history.
fn spawn_watch_sync(state: &Arc<State>) -> Result<thread::JoinHandle<()>, NodeError> {
    let sync_state = Arc::clone(state);
    thread::Builder::new()
        .name("concord-watch".into())
        .spawn(move || sync_state.hub.run_sync(&*sync_state))
        .map_err(NodeError::Thread)
}

/// When the state machine is made durable (both write paths share it):
/// after [`CHECKPOINT_ENTRIES`] applied entries or [`CHECKPOINT_EVERY`],
/// recounting the bytes in use every [`SIZE_IN_USE_EVERY`].
pub(crate) struct Checkpointer {
    durable: u64,
    last: Instant,
    last_size_check: Instant,
}

impl Checkpointer {
    /// Everything up to `durable` is already durable.
    pub(crate) fn new(durable: u64) -> Self {
        Checkpointer {
            durable,
            last: Instant::now(),
            last_size_check: Instant::now(),
        }
    }

    /// The last index known durable.
    pub(crate) fn durable(&self) -> u64 {
        self.durable
    }

    /// Records that everything up to `index` is durable (installed otherwise).
    pub(crate) fn set_durable(&mut self, index: u64) {
        self.durable = index;
    }

    /// Whether a checkpoint is due now.
    pub(crate) fn due(&self, state: &State) -> bool {
        let applied = state.applied_index();
        applied > self.durable
            && (applied - self.durable >= CHECKPOINT_ENTRIES || self.last.elapsed() >= CHECKPOINT_EVERY)
    }

    /// Makes everything applied durable; `true` if that moved the durable point.
    pub(crate) fn run(&mut self, state: &State) -> Result<bool, NodeError> {
        self.last = Instant::now();
        let applied = state.applied_index();
        if applied <= self.durable {
            return Ok(false);
        }
        let started = Instant::now();
        state.storage.checkpoint()?;
        state.db_size.store(state.storage.size(), Ordering::Relaxed);
        let synced = started.elapsed();
        crate::metrics::BACKEND_COMMIT.observe(synced);
        if self.last_size_check.elapsed() >= SIZE_IN_USE_EVERY {
            state.db_in_use.store(state.storage.size_in_use()?, Ordering::Relaxed);
            self.last_size_check = Instant::now();
        }
        tracing::debug!(
            entries = applied - self.durable,
            sync_ms = synced.as_secs_f64() * 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "checkpoint"
        );
        self.durable = applied;
        Ok(true)
    }
}

fn random_id() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS provides randomness");
    u64::from_le_bytes(b) >> 1 | 1
}

struct WriteLoop {
    state: Arc<State>,
    log: Log,
    checkpoints: Checkpointer,
    /// Proposals in the last batch.
    last_batch: usize,
}

impl WriteLoop {
    fn run(&mut self, rx: &mpsc::Receiver<Msg>) -> Result<(), NodeError> {
        let mut batch: Vec<(LogRequest, Reply)> = Vec::new();
        loop {
            let first = match rx.recv_timeout(CHECKPOINT_EVERY) {
                Ok(m) => m,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.maybe_checkpoint()?;
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return self.checkpoint(),
            };
            let mut stop = None;
            match first {
                Msg::Propose(r, tx) => batch.push((r, tx)),
                Msg::Stop(done) => stop = Some(done),
            }
            if self.last_batch >= GATHER_FROM {
                // Under load, let proposals gather a moment: one fdatasync
                // and one commit then serve more of them.
                thread::sleep(GATHER);
            }
            while stop.is_none() && batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(Msg::Propose(r, tx)) => batch.push((r, tx)),
                    Ok(Msg::Stop(done)) => stop = Some(done),
                    Err(_) => break,
                }
            }
            self.last_batch = batch.len();
            if !batch.is_empty() {
                if let Err(e) = self.commit(&mut batch) {
                    for (_, tx) in batch.drain(..) {
                        let _ = tx.send(Err(EtcdError::Internal(e.to_string())));
                    }
                    return Err(e);
                }
            }
            self.maybe_checkpoint()?;
            if let Some(done) = stop {
                self.checkpoint()?;
                let _ = done.send(());
                return Ok(());
            }
        }
    }

    /// Appends the batch durably, applies it, and answers every proposer.
    fn commit(&mut self, batch: &mut Vec<(LogRequest, Reply)>) -> Result<(), NodeError> {
        let payloads: Vec<Vec<u8>> = batch.iter().map(|(r, _)| r.encode_to_vec()).collect();
        let first = self.log.append(payloads.iter().map(Vec::as_slice))?;
        let last = first + batch.len() as u64 - 1;
        self.state.committed.store(last, Ordering::Release);
        crate::metrics::WRITE_BATCH.observe_value(batch.len() as f64);

        let mut sm = self.state.sm.write();
        let results = self.state.storage.write(|view| {
            let mut out = Vec::with_capacity(batch.len());
            for (req, _) in batch.iter() {
                out.push(apply_one(&mut sm, view, req)?);
            }
            view.set_applied(&sm.mvcc, last)?;
            Ok(out)
        })?;
        self.state.applied.store(last, Ordering::Release);
        self.state.publish(&sm);
        let events = sm.take_events();
        let rev = sm.mvcc.current_revision();
        drop(sm);

        for ((_, tx), res) in batch.drain(..).zip(results) {
            let _ = tx.send(res);
        }
        self.state.hub.notify(rev, &events, &*self.state);
        Ok(())
    }

    fn maybe_checkpoint(&mut self) -> Result<(), NodeError> {
        if self.checkpoints.due(&self.state) {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Makes the state machine durable, then drops the log before it.
    fn checkpoint(&mut self) -> Result<(), NodeError> {
        if self.checkpoints.run(&self.state)? {
            self.log.release(self.checkpoints.durable())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_write_thread_is_reported_not_swallowed() {
        let (tx, rx) = watch::channel(None);
        let t = thread::spawn(move || guarded("write path", &tx, || panic!("boom")));
        t.join().unwrap();
        assert_eq!(rx.borrow().as_deref(), Some("write path panicked: boom"));

        let (tx, rx) = watch::channel(None);
        guarded("raft loop", &tx, || Err(NodeError::Removed));
        assert_eq!(rx.borrow().as_deref(), Some("this member was removed from the cluster"));

        let (tx, rx) = watch::channel(None);
        guarded("raft loop", &tx, || Ok(()));
        assert_eq!(*rx.borrow(), None);
    }
}
