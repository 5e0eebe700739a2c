//! The front of a member's write path: [`Node`] starts the single-member
//! loop (`single`) or raft's (`replica`) over the same state, and hands
//! proposals, reads barriers and peers' messages to whichever runs.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use prost::Message;
use raft::prelude::{ConfState, SnapshotMetadata};
use tokio::sync::{oneshot, watch};

use super::log::{Entry, Log};
use super::memlog::LogCore;
use super::replica::{JoinAnswer, MemberChange, RaftConfig, RaftLoop, RaftMsg};
use super::shared::{apply_one, Identity, WatchSettings, MAX_INBOX};
use super::single::{Msg, WriteLoop};
use super::snapshots::Snapshots;
use super::wal::RaftWal;
use super::{NodeError, State};
use crate::api::concordpb::LogRequest;
use crate::api::error::EtcdError;
use crate::state_machine::WriteResponse;
use crate::storage::{SnapshotSource, SnapshotSpool, Storage, StorageError};

/// How long a replicated write or linearizable read may wait for
/// agreement before the client hears `request timed out` (etcd: 5 s plus
/// the election timeout).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(7);

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

impl NodeConfig {
    fn watch_settings(&self) -> WatchSettings {
        WatchSettings {
            progress_interval: self.progress_interval,
            max_response_bytes: self.max_response_bytes,
        }
    }
}

/// How writes reach the state machine.
enum WritePath {
    /// A single member: the local group-committed log.
    Local(mpsc::Sender<Msg>),
    /// A replicated member: raft, and the snapshots it sends and receives.
    Raft(mpsc::Sender<RaftMsg>, Arc<Snapshots>),
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
        let state = State::open(storage, sm, cfg.watch_settings(), identity)?;
        let sync_thread = spawn_watch_sync(&state)?;
        let (tx, rx) = mpsc::channel();
        let (fatal_tx, fatal) = watch::channel(None);
        let loop_state = Arc::clone(&state);
        let write_thread = thread::Builder::new()
            .name("concord-write".into())
            .spawn(move || {
                guarded("write path", &fatal_tx, || {
                    let mut w = WriteLoop::new(loop_state, log, applied);
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
            match &raft.join_snapshot {
                Some(path) => {
                    storage.install_file(path, join.index)?;
                }
                None => storage.install(&join.snapshot.clone().unwrap_or_default(), join.index)?,
            }
            storage.checkpoint()?;
            if let Some(path) = &raft.join_snapshot {
                let _ = std::fs::remove_file(path);
            }
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
        let state = State::open(storage, sm, cfg.watch_settings(), identity)?;
        let installed = match state.storage.raft_snapshot()? {
            Some(b) => Some(
                protobuf::Message::parse_from_bytes(&b)
                    .map_err(|e| NodeError::Apply(format!("stored snapshot metadata: {e}")))?,
            ),
            None => None,
        };
        let (mut wal, core) = open_raft_log(&data_dir.join("raft"), &raft, meta.applied_index, installed)?;
        wal.set_fsync(cfg.fsync);
        let snapshots = Arc::new(Snapshots::new(data_dir.join("raft-snap")));
        let mut raft_loop = RaftLoop::new(core, wal, Arc::clone(&state), raft, Arc::clone(&snapshots))?;
        let sync_thread = spawn_watch_sync(&state)?;
        let (tx, rx) = mpsc::channel();
        let (fatal_tx, fatal) = watch::channel(None);
        let raft_thread = thread::Builder::new()
            .name("concord-raft".into())
            .spawn(move || guarded("raft loop", &fatal_tx, || raft_loop.run(&rx)))
            .map_err(NodeError::Thread)?;
        Ok(Node {
            path: WritePath::Raft(tx, snapshots),
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
            WritePath::Raft(..) => self.state.leader() == self.state.member_id,
        }
    }

    /// Whether this member is part of a replicated cluster.
    pub fn is_replicated(&self) -> bool {
        matches!(self.path, WritePath::Raft(..))
    }

    /// Waits until this member has applied everything committed when the
    /// call was made (raft's ReadIndex, confirmed by a quorum), so a read
    /// after it is linearizable. Immediate on a single member.
    pub async fn read_barrier(&self) -> Result<(), EtcdError> {
        let WritePath::Raft(tx, _) = &self.path else {
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
        let WritePath::Raft(tx, _) = &self.path else {
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
        let WritePath::Raft(tx, _) = &self.path else {
            return false;
        };
        let (ok, rx) = oneshot::channel();
        if tx.send(RaftMsg::TransferLeader(to, ok)).is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// What a member joining with `peer_urls` needs.
    pub async fn join_info(&self, peer_urls: Vec<String>) -> Result<JoinAnswer, EtcdError> {
        let WritePath::Raft(tx, _) = &self.path else {
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
        if let WritePath::Raft(tx, _) = &self.path {
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

    /// The state to stream with the raft message `msg` (to be sent to a
    /// peer) when it is a snapshot whose state goes beside it; `None` for
    /// every other message.
    pub fn snapshot_to_send(&self, msg: &[u8]) -> Option<Arc<SnapshotSource>> {
        match &self.path {
            WritePath::Raft(_, snaps) => snaps.source_for(msg),
            WritePath::Local(_) => None,
        }
    }

    /// Starts receiving the state a peer streams with the snapshot
    /// message `msg` (at most `limit` bytes); once the spool is finished,
    /// [`Node::step`] the message.
    pub fn receive_snapshot(&self, msg: &[u8], limit: u64) -> Result<SnapshotSpool, EtcdError> {
        match &self.path {
            WritePath::Raft(_, snaps) => snaps.spool(msg, limit),
            WritePath::Local(_) => Err(EtcdError::Unimplemented("concord: not a replicated member".into())),
        }
    }

    /// Tells raft a member could not be reached.
    pub fn report_unreachable(&self, to: u64) {
        if let WritePath::Raft(tx, _) = &self.path {
            let _ = tx.send(RaftMsg::Unreachable(to));
        }
    }

    /// A peer refused this member's messages because it was removed from
    /// the cluster: the member stops, as if it had applied its removal.
    pub fn report_removed(&self) {
        if let WritePath::Raft(tx, _) = &self.path {
            let _ = tx.send(RaftMsg::Removed);
        }
    }

    /// Tells raft whether a snapshot reached a member.
    pub fn report_snapshot(&self, to: u64, ok: bool) {
        if let WritePath::Raft(tx, _) = &self.path {
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
            WritePath::Raft(tx, _) => {
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
            WritePath::Raft(tx, _) => tx.send(RaftMsg::Stop(done)).is_ok(),
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

fn random_id() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS provides randomness");
    u64::from_le_bytes(b) >> 1 | 1
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
