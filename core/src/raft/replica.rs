//! A replicated member: raft-rs (TiKV's port of etcd's raft) decides the
//! order of writes across members; this loop drives it the way etcd's
//! server does.
//!
//! One OS thread owns the [`RawNode`]. Each turn it takes every message
//! waiting (client proposals, raft messages from peers, read-index
//! requests), ticks the clock, then handles a `Ready`: sends what may go
//! out at once, applies committed entries to the state machine (one
//! transaction per batch, answering the proposals this member made),
//! persists new entries and the hard state with one durable commit, sends
//! what had to wait for that, and answers reads whose index is applied.
//!
//! Raft's log lives in the same redb database as the state machine (tables
//! `raft_log`, `raft_meta`); a member that falls behind the compacted log
//! gets the whole state machine as a snapshot.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use prost::Message as _;
use protobuf::Message as _;
use raft::prelude::{Entry, EntryType, Message as RaftMessage, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, RawNode, SnapshotStatus, StateRole, Storage as RaftStorage};
use tokio::sync::oneshot;

use super::checkpoint::Checkpointer;
use super::error::pb_err;
use super::memlog::LogCore;
use super::shared::{apply_one, Reply};
use super::snapshots::{Snapshots, STREAMED};
use super::wal::RaftWal;
use super::{NodeError, State};
use crate::api::concordpb::log_request::Request as LogOp;
use crate::api::concordpb::{LogRequest, Member, Snapshot as SnapshotData};
use crate::api::error::EtcdError;
use crate::state_machine::WriteResponse;
use crate::storage::StorageError;

/// Proposals and reads not answered in this time are dropped (their
/// callers have given up by then).
const FORGET_AFTER: Duration = Duration::from_secs(30);

/// Sends raft messages to other members (the server's peer transport).
pub trait Transport: Send + Sync + 'static {
    /// Sends an encoded `eraftpb.Message` to member `to`, best effort. A
    /// failure is reported back with [`super::Node::report_unreachable`]
    /// (and [`super::Node::report_snapshot`] for snapshots).
    fn send(&self, to: u64, msg: Vec<u8>, snapshot: bool);
    /// A member was added (with its peer URL) or removed (`None`).
    fn set_peer(&self, id: u64, url: Option<String>);
    /// Who this member is and which cluster it is in, once its data is
    /// open (a restarted member that was added to a running cluster has
    /// the IDs it was given then, not the ones its flags suggest). Called
    /// before raft sends anything.
    fn set_identity(&self, member: u64, cluster: u64) {
        let _ = (member, cluster);
    }
    /// Since when member `id` has answered without a break (`None`: it
    /// does not answer now). The strict reconfiguration check counts the
    /// members connected for a while, as etcd's does.
    fn connected_since(&self, id: u64) -> Option<Instant>;
}

/// A change of the cluster's membership.
#[derive(Clone, Debug)]
pub enum MemberChange {
    /// A new member (a voter, or a learner with `is_learner`).
    Add(Member),
    /// Remove a member.
    Remove(u64),
    /// Make a learner a voter.
    Promote(u64),
}

/// How long a peer must have answered without a break to count as
/// connected for a membership change (etcd's health interval).
const CONNECTED_FOR: Duration = Duration::from_secs(5);

/// What the strict reconfiguration check looks at: the voters, which of
/// them have started (published their name), and which answer.
struct Quorum<'a> {
    me: u64,
    voters: &'a [u64],
    members: &'a std::collections::BTreeMap<u64, Member>,
    connected_since: &'a dyn Fn(u64) -> Option<Instant>,
    now: Instant,
}

impl Quorum<'_> {
    fn started(&self, id: u64) -> bool {
        self.members.get(&id).is_some_and(|m| !m.name.is_empty())
    }

    /// This member, or a peer answering for [`CONNECTED_FOR`].
    fn connected(&self, id: u64) -> bool {
        id == self.me
            || (self.connected_since)(id).is_some_and(|t| self.now.saturating_duration_since(t) >= CONNECTED_FOR)
    }

    /// Whether `change` leaves a quorum of started and connected voters,
    /// as etcd's strict reconfiguration check decides.
    fn allows(&self, change: &MemberChange) -> Result<(), EtcdError> {
        let started = |ids: &mut dyn Iterator<Item = u64>| ids.filter(|&id| self.started(id)).count();
        match change {
            MemberChange::Add(m) if !m.is_learner => {
                let members = self.voters.len() + 1;
                let up = started(&mut self.voters.iter().copied());
                // A second member may join a cluster of one.
                if !(up == 1 && members == 2) && up < members / 2 + 1 {
                    return Err(EtcdError::NotEnoughStartedMembers);
                }
                if !self.voters.iter().all(|&id| self.connected(id)) {
                    return Err(EtcdError::Unhealthy);
                }
                Ok(())
            }
            MemberChange::Add(_) => Ok(()),
            MemberChange::Remove(id) => {
                if self.members.get(id).is_some_and(|m| m.is_learner) || !self.voters.contains(id) {
                    return Ok(());
                }
                let rest = self.voters.len() - 1;
                if started(&mut self.voters.iter().copied().filter(|v| v != id)) < rest / 2 + 1 {
                    return Err(EtcdError::NotEnoughStartedMembers);
                }
                if *id != self.me && (self.connected_since)(*id).is_none() {
                    // A member that is down is not part of the working quorum.
                    return Ok(());
                }
                let active = self.voters.iter().filter(|&&v| self.connected(v)).count();
                if active.saturating_sub(1) < 1 + (self.voters.len() - 1) / 2 {
                    return Err(EtcdError::Unhealthy);
                }
                Ok(())
            }
            MemberChange::Promote(_) => {
                // The learner counts as a started member of the new quorum.
                let members = self.voters.len() + 1;
                let up = started(&mut self.voters.iter().copied()) + 1;
                if up < members / 2 + 1 {
                    return Err(EtcdError::NotEnoughStartedMembers);
                }
                Ok(())
            }
        }
    }
}

/// How a replicated member takes part.
#[derive(Clone)]
pub struct RaftConfig {
    /// This member's ID.
    pub id: u64,
    /// The cluster's ID.
    pub cluster_id: u64,
    /// The voting members of a new cluster (ignored once the log exists).
    pub voters: Vec<u64>,
    /// One raft tick (`--heartbeat-interval`).
    pub heartbeat: Duration,
    /// Ticks without a leader before an election (`--election-timeout` / heartbeat).
    pub election_ticks: usize,
    /// Pre-vote (`--pre-vote`).
    pub pre_vote: bool,
    /// Entries kept in the log after a checkpoint before it is compacted
    /// (`--snapshot-count`); members further behind get a snapshot.
    pub snapshot_count: u64,
    /// Where messages go.
    pub transport: Arc<dyn Transport>,
    /// Refuse membership changes that would leave too few started or
    /// connected members for a quorum (`--strict-reconfig-check`).
    pub strict_reconfig_check: bool,
    /// This member's attributes, published through the log once it runs.
    pub attrs: Member,
    /// Joining a running cluster: the state to start from.
    pub join: Option<crate::api::concordpb::JoinInfo>,
    /// Joining: the snapshot file received with `join` (its changes and
    /// leases; `join.snapshot` then holds only the rest).
    pub join_snapshot: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for RaftConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftConfig")
            .field("id", &self.id)
            .field("voters", &self.voters)
            .field("heartbeat", &self.heartbeat)
            .field("election_ticks", &self.election_ticks)
            .finish_non_exhaustive()
    }
}

/// What the raft thread is asked to do.
pub(crate) enum RaftMsg {
    Propose(LogRequest, Reply),
    Step(Vec<u8>),
    ReadIndex(oneshot::Sender<()>),
    Unreachable(u64),
    SnapshotDone(u64, bool),
    ChangeMembers(MemberChange, Reply),
    JoinInfo(Vec<String>, oneshot::Sender<Result<JoinAnswer, EtcdError>>),
    TransferLeader(u64, oneshot::Sender<bool>),
    /// A peer refused this member's messages: it was removed.
    Removed,
    Stop(oneshot::Sender<()>),
}

/// What a member joining a running cluster gets: an encoded `JoinInfo`
/// (its ID, the cluster's, the configuration and the snapshot's head) and
/// the state to stream after it, as a snapshot file.
pub struct JoinAnswer {
    /// The encoded `concordpb.JoinInfo`.
    pub info: Vec<u8>,
    /// The whole state at the answer's index.
    pub snapshot: crate::storage::SnapshotSource,
}

/// raft-rs's view of the member's storage.
pub(crate) struct Store {
    core: Arc<RwLock<LogCore>>,
    state: Arc<State>,
    /// The snapshot offered to lagging members.
    snapshots: Arc<Snapshots>,
}

impl RaftStorage for Store {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let c = self.core.read();
        Ok(RaftState::new(c.hs.clone(), c.cs.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let c = self.core.read();
        if low < c.first() {
            return Err(raft::Error::Store(raft::StorageError::Compacted));
        }
        if high > c.last() + 1 {
            return Err(raft::Error::Store(raft::StorageError::Unavailable));
        }
        let from = (low - c.first()) as usize;
        let to = (high - c.first()) as usize;
        let mut ents = c.entries[from..to].to_vec();
        raft::util::limit_size(&mut ents, max_size.into());
        Ok(ents)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.core.read().term(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.core.read().first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.core.read().last())
    }

    /// The whole state machine as applied now: its metadata, with the
    /// state pinned (a read transaction) and streamed when the message is
    /// sent, so making it takes no time on the raft thread and no memory.
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if let Some(snap) = self.snapshots.offered(request_index) {
            return Ok(snap);
        }
        let (dump, meta) = self.begin(request_index)?;
        let index = meta.index;
        let mut snap = Snapshot::default();
        snap.set_metadata(meta);
        snap.data = STREAMED.to_vec().into();
        self.snapshots.offer(snap.clone(), dump.into_source());
        tracing::info!(
            index,
            "snapshot offered to a lagging member (its state is streamed as it is sent)"
        );
        Ok(snap)
    }
}

fn unavailable() -> raft::Error {
    raft::Error::Store(raft::StorageError::SnapshotTemporarilyUnavailable)
}

impl Store {
    /// A store over `core` and `state`, with no snapshot made yet.
    fn new(core: Arc<RwLock<LogCore>>, state: Arc<State>, snapshots: Arc<Snapshots>) -> Store {
        Store { core, state, snapshots }
    }

    /// Starts a snapshot at the applied index (at least `request_index`):
    /// the dump under way and raft's metadata for it, taken together under
    /// the locks, which are released on return.
    fn begin(&self, request_index: u64) -> raft::Result<(crate::storage::Dump, SnapshotMetadata)> {
        let sm = self.state.sm.read();
        let applied = self.state.applied_index();
        if applied < request_index {
            return Err(unavailable());
        }
        let dump = self
            .state
            .storage
            .dump_start(&sm)
            .map_err(|e| raft::Error::Store(raft::StorageError::Other(Box::new(e))))?;
        let c = self.core.read();
        let mut meta = SnapshotMetadata {
            index: applied,
            term: c.term(applied)?,
            ..Default::default()
        };
        meta.set_conf_state(c.cs.clone());
        Ok((dump, meta))
    }
}

fn st_err(e: StorageError) -> NodeError {
    NodeError::Storage(e)
}

/// Whether the member list already shows `attrs`' name and client URLs.
fn is_published(stored: Option<&Member>, attrs: &Member) -> bool {
    stored.is_some_and(|m| m.name == attrs.name && m.client_urls == attrs.client_urls)
}

/// The raft thread's state.
pub(crate) struct RaftLoop {
    raw: RawNode<Store>,
    core: Arc<RwLock<LogCore>>,
    wal: RaftWal,
    state: Arc<State>,
    cfg: RaftConfig,
    next_request: u64,
    pending: HashMap<u64, (Reply, Instant)>,
    reads_waiting: Vec<oneshot::Sender<()>>,
    reads_inflight: HashMap<Vec<u8>, (Vec<oneshot::Sender<()>>, Instant)>,
    reads_ready: Vec<(u64, Vec<oneshot::Sender<()>>)>,
    read_seq: u64,
    checkpoints: Checkpointer,
    /// The request number of this member's attribute publication in
    /// flight, and whether it has been applied.
    published: bool,
    publish_sent: Option<Instant>,
    /// A peer said this member was removed from the cluster.
    told_removed: bool,
    /// Snapshots offered to lagging members, and received ones.
    snapshots: Arc<Snapshots>,
}

impl RaftLoop {
    pub(crate) fn new(
        core: LogCore,
        wal: RaftWal,
        state: Arc<State>,
        cfg: RaftConfig,
        snapshots: Arc<Snapshots>,
    ) -> Result<RaftLoop, NodeError> {
        let applied = state.applied_index();
        let core = Arc::new(RwLock::new(core));
        let store = Store::new(Arc::clone(&core), Arc::clone(&state), Arc::clone(&snapshots));
        let rcfg = raft::Config {
            id: cfg.id,
            election_tick: cfg.election_ticks.max(2),
            heartbeat_tick: 1,
            applied,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: cfg.pre_vote,
            ..Default::default()
        };
        rcfg.validate()
            .map_err(|e| NodeError::Apply(format!("raft config: {e}")))?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&rcfg, store, &logger).map_err(|e| NodeError::Apply(format!("raft: {e}")))?;
        let published = state.with(|sm| is_published(sm.members.get(&cfg.id), &cfg.attrs));
        Ok(RaftLoop {
            raw,
            core,
            wal,
            checkpoints: Checkpointer::new(applied),
            state,
            cfg,
            next_request: 0,
            pending: HashMap::new(),
            reads_waiting: Vec::new(),
            reads_inflight: HashMap::new(),
            reads_ready: Vec::new(),
            read_seq: 0,
            published,
            publish_sent: None,
            told_removed: false,
            snapshots,
        })
    }

    pub(crate) fn run(&mut self, rx: &mpsc::Receiver<RaftMsg>) -> Result<(), NodeError> {
        let tick = self.cfg.heartbeat;
        let mut last_tick = Instant::now();
        loop {
            let wait = tick.saturating_sub(last_tick.elapsed());
            let mut stop = None;
            match rx.recv_timeout(wait) {
                Ok(m) => self.handle(m, &mut stop),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return self.checkpoint(),
            }
            let mut n = 0;
            while stop.is_none() && n < 4096 {
                match rx.try_recv() {
                    Ok(m) => self.handle(m, &mut stop),
                    Err(_) => break,
                }
                n += 1;
            }
            if last_tick.elapsed() >= tick {
                self.raw.tick();
                last_tick = Instant::now();
                self.housekeeping();
            }
            self.start_reads();
            self.on_ready()?;
            self.maybe_checkpoint()?;
            if self.told_removed {
                // It missed the entry that removed it (the leader stops
                // sending once it applies it).
                tracing::warn!("a peer says this member was removed from the cluster; stopping");
                self.checkpoint()?;
                return Err(NodeError::Removed);
            }
            if let Some(done) = stop {
                self.checkpoint()?;
                let _ = done.send(());
                return Ok(());
            }
        }
    }

    fn handle(&mut self, m: RaftMsg, stop: &mut Option<oneshot::Sender<()>>) {
        match m {
            RaftMsg::Propose(req, reply) => self.propose(req, Some(reply)),
            RaftMsg::Step(bytes) => {
                self.state.inbox.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                let mut msg = RaftMessage::default();
                if msg.merge_from_bytes(&bytes).is_ok() {
                    if let Some(why) = self.refuse(&msg) {
                        tracing::warn!(from = format_args!("{:x}", msg.from), kind = ?msg.get_msg_type(), why, "raft message dropped");
                        return;
                    }
                    if msg.get_msg_type() == raft::prelude::MessageType::MsgSnapshot
                        && msg.get_snapshot().data.as_ref() == STREAMED
                        && !self.snapshots.claim(msg.get_snapshot().get_metadata().index)
                    {
                        tracing::warn!(
                            from = format_args!("{:x}", msg.from),
                            "streamed snapshot dropped: its state was not received"
                        );
                        return;
                    }
                    if msg.get_msg_type() == raft::prelude::MessageType::MsgAppend {
                        crate::metrics::APPENDS_RECEIVED.inc();
                    }
                    if let Err(e) = self.raw.step(msg) {
                        tracing::debug!(error = %e, "raft message not taken");
                    }
                }
            }
            RaftMsg::ReadIndex(tx) => self.reads_waiting.push(tx),
            RaftMsg::Unreachable(to) => self.raw.report_unreachable(to),
            RaftMsg::SnapshotDone(to, ok) => {
                self.snapshots.release();
                self.raw.report_snapshot(
                    to,
                    if ok {
                        SnapshotStatus::Finish
                    } else {
                        SnapshotStatus::Failure
                    },
                );
            }
            RaftMsg::ChangeMembers(change, reply) => self.change_members(change, reply),
            RaftMsg::JoinInfo(peer_urls, reply) => self.join_info(&peer_urls, reply),
            RaftMsg::TransferLeader(to, ok) => {
                let voter = self.core.read().cs.voters.contains(&to);
                if voter {
                    self.raw.transfer_leader(to);
                }
                let _ = ok.send(voter);
            }
            RaftMsg::Removed => self.told_removed = true,
            RaftMsg::Stop(done) => *stop = Some(done),
        }
    }

    /// Why a message must not reach raft, if it must not: it does not
    /// come from a member of the current configuration (a removed member, or
    /// anything forged on the peer port), is addressed to another member, or
    /// is a heartbeat claiming a commit index this log does not have (raft
    /// would panic on it; a real leader never sends one).
    fn refuse(&self, msg: &RaftMessage) -> Option<&'static str> {
        let conf = self.raw.raft.prs().conf();
        let member = conf.voters().contains(msg.from) || conf.learners().contains(&msg.from);
        if !member {
            return Some("the sender is not a member");
        }
        if msg.to != self.cfg.id {
            return Some("addressed to another member");
        }
        if msg.get_msg_type() == raft::prelude::MessageType::MsgHeartbeat
            && msg.commit > self.raw.raft.raft_log.last_index()
        {
            return Some("a commit index beyond this member's log");
        }
        None
    }

    /// Proposes a membership change; answered when applied here.
    fn change_members(&mut self, change: MemberChange, reply: Reply) {
        use raft::prelude::{ConfChange, ConfChangeType};
        let members = self.state.with(|sm| sm.members.clone());
        if self.cfg.strict_reconfig_check {
            let voters = self.core.read().cs.voters.clone();
            let transport = Arc::clone(&self.cfg.transport);
            let quorum = Quorum {
                me: self.cfg.id,
                voters: &voters,
                members: &members,
                connected_since: &|id| transport.connected_since(id),
                now: Instant::now(),
            };
            if let Err(e) = quorum.allows(&change) {
                tracing::warn!(change = ?change, error = %e, "membership change refused by the strict reconfiguration check");
                let _ = reply.send(Err(e));
                return;
            }
        }
        let mut cc = ConfChange::default();
        let mut member = None;
        match change {
            MemberChange::Add(m) => {
                if members
                    .values()
                    .any(|x| x.peer_urls.iter().any(|u| m.peer_urls.contains(u)))
                {
                    let _ = reply.send(Err(EtcdError::PeerUrlExists));
                    return;
                }
                cc.set_change_type(if m.is_learner {
                    ConfChangeType::AddLearnerNode
                } else {
                    ConfChangeType::AddNode
                });
                cc.node_id = m.id;
                member = Some(m);
            }
            MemberChange::Remove(id) => {
                if !members.contains_key(&id) && !self.core.read().cs.voters.contains(&id) {
                    let _ = reply.send(Err(EtcdError::MemberNotFound));
                    return;
                }
                cc.set_change_type(ConfChangeType::RemoveNode);
                cc.node_id = id;
            }
            MemberChange::Promote(id) => {
                let Some(m) = members.get(&id).cloned() else {
                    let _ = reply.send(Err(EtcdError::MemberNotFound));
                    return;
                };
                if !m.is_learner {
                    let _ = reply.send(Err(EtcdError::MemberNotLearner));
                    return;
                }
                if self.raw.raft.state == StateRole::Leader {
                    let committed = self.raw.raft.raft_log.committed;
                    let matched = self.raw.raft.prs().get(id).map_or(0, |p| p.matched);
                    if (matched as f64) < committed as f64 * 0.9 {
                        let _ = reply.send(Err(EtcdError::LearnerNotReady));
                        return;
                    }
                }
                cc.set_change_type(ConfChangeType::AddNode);
                cc.node_id = id;
                member = Some(Member { is_learner: false, ..m });
            }
        }
        self.next_request += 1;
        let ctx = LogRequest {
            request: member.map(LogOp::MemberAttrs),
            origin: self.cfg.id,
            request_id: self.next_request,
            ..Default::default()
        };
        self.pending.insert(self.next_request, (reply, Instant::now()));
        if self.raw.propose_conf_change(ctx.encode_to_vec(), cc).is_err() {
            if let Some((r, _)) = self.pending.remove(&self.next_request) {
                let _ = r.send(Err(EtcdError::NoLeader));
            }
        }
    }

    /// What a member joining with `peer_urls` needs: its ID (as MemberAdd
    /// recorded it), the cluster's, and the state machine now.
    /// What a member added with `peer_urls` needs to join: only a member
    /// added and not yet started gets it (a started member's peer URLs
    /// are public, its data is not).
    /// What a member joining with `peer_urls` needs: its ID, the cluster's,
    /// and the state machine at the applied index. The data is read on a
    /// thread of its own (a large store takes long), which answers `reply`;
    /// the raft loop goes on meanwhile.
    fn join_info(&self, peer_urls: &[String], reply: oneshot::Sender<Result<JoinAnswer, EtcdError>>) {
        let answer = self.joining_member(peer_urls).and_then(|member_id| {
            let store = Store::new(
                Arc::clone(&self.core),
                Arc::clone(&self.state),
                Arc::clone(&self.snapshots),
            );
            let (dump, meta) = store
                .begin(0)
                .map_err(|e| EtcdError::Internal(format!("snapshot: {e}")))?;
            // The head (members, auth, v2) goes in the answer; the changes
            // and leases are streamed after it.
            let info = crate::api::concordpb::JoinInfo {
                member_id,
                cluster_id: self.state.cluster_id,
                index: meta.index,
                term: meta.term,
                conf_state: meta
                    .get_conf_state()
                    .write_to_bytes()
                    .map_err(|e| EtcdError::Internal(e.to_string()))?,
                snapshot: Some(dump.head().clone()),
            };
            Ok(JoinAnswer {
                info: info.encode_to_vec(),
                snapshot: dump.into_source(),
            })
        });
        let _ = reply.send(answer);
    }

    /// The ID of the member added with `peer_urls` that has not started yet.
    fn joining_member(&self, peer_urls: &[String]) -> Result<u64, EtcdError> {
        let found = self.state.with(|sm| {
            sm.members
                .values()
                .find(|m| m.peer_urls.iter().any(|u| peer_urls.contains(u)))
                .map(|m| (m.id, m.name.is_empty()))
        });
        match found {
            Some((id, true)) => Ok(id),
            Some((id, false)) => {
                tracing::warn!(
                    member = format_args!("{id:x}"),
                    ?peer_urls,
                    "join refused: that member has already started"
                );
                Err(EtcdError::InvalidRequest(
                    "concord: that member has already started; only a member added and not yet started can join".into(),
                ))
            }
            None => Err(EtcdError::MemberNotFound),
        }
    }

    fn propose(&mut self, mut req: LogRequest, reply: Option<Reply>) {
        self.next_request += 1;
        req.origin = self.cfg.id;
        req.request_id = self.next_request;
        if let Some(r) = reply {
            self.pending.insert(self.next_request, (r, Instant::now()));
        }
        if self.raw.propose(vec![], req.encode_to_vec()).is_err() {
            if let Some((r, _)) = self.pending.remove(&self.next_request) {
                let _ = r.send(Err(EtcdError::NoLeader));
            }
        }
    }

    /// Publishes this member's attributes until applied; forgets callers
    /// that gave up.
    fn housekeeping(&mut self) {
        let has_leader = self.raw.raft.leader_id != raft::INVALID_ID;
        if !self.published && has_leader && self.publish_sent.is_none_or(|t| t.elapsed() > Duration::from_secs(2)) {
            self.publish_sent = Some(Instant::now());
            let req = LogRequest {
                request: Some(LogOp::MemberAttrs(self.cfg.attrs.clone())),
                ..Default::default()
            };
            self.propose(req, None);
        }
        self.pending.retain(|_, (_, t)| t.elapsed() < FORGET_AFTER);
        self.reads_inflight.retain(|_, (_, t)| t.elapsed() < FORGET_AFTER);
    }

    fn start_reads(&mut self) {
        if self.reads_waiting.is_empty() {
            return;
        }
        self.read_seq += 1;
        // The leader merges requests with equal contexts: make ours unique
        // across members.
        let mut ctx = self.cfg.id.to_be_bytes().to_vec();
        ctx.extend_from_slice(&self.read_seq.to_be_bytes());
        self.raw.read_index(ctx.clone());
        let waiting = std::mem::take(&mut self.reads_waiting);
        self.reads_inflight.insert(ctx, (waiting, Instant::now()));
    }

    fn send(&self, msgs: Vec<RaftMessage>) {
        for m in msgs {
            let snapshot = m.get_msg_type() == raft::prelude::MessageType::MsgSnapshot;
            if m.get_msg_type() == raft::prelude::MessageType::MsgAppend {
                crate::metrics::APPENDS_SENT.inc();
            }
            match m.write_to_bytes() {
                Ok(b) => self.cfg.transport.send(m.to, b, snapshot),
                Err(e) => tracing::error!(error = %e, "raft message not encoded"),
            }
        }
    }

    fn on_ready(&mut self) -> Result<(), NodeError> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut rd = self.raw.ready();
        if let Some(ss) = rd.ss() {
            let was = self.state.leader.swap(ss.leader_id, Ordering::AcqRel);
            if was != ss.leader_id {
                if ss.leader_id != 0 {
                    self.state.leader_changes.fetch_add(1, Ordering::Relaxed);
                }
                tracing::info!(
                    leader = format_args!("{:x}", ss.leader_id),
                    term = self.raw.raft.term,
                    "leader changed"
                );
            }
        }
        let term = self.raw.raft.term;
        if self.state.term.swap(term, Ordering::AcqRel) != term {
            self.state.hub.set_term(term);
        }
        if !rd.messages().is_empty() {
            self.send(rd.take_messages());
        }
        if !rd.snapshot().is_empty() {
            let snap = rd.snapshot().clone();
            self.apply_snapshot(snap)?;
        }
        let committed = rd.take_committed_entries();
        self.apply_entries(committed)?;
        let entries = rd.entries();
        let hs = rd.hs().cloned();
        if !entries.is_empty() || hs.is_some() {
            self.wal.save(entries, hs.as_ref())?;
            if !entries.is_empty() {
                crate::metrics::WRITE_BATCH.observe_value(entries.len() as f64);
            }
            if let Some(h) = &hs {
                self.state.committed.fetch_max(h.commit, Ordering::AcqRel);
            }
            let mut c = self.core.write();
            c.append(entries);
            if let Some(h) = hs {
                c.hs = h;
            }
        }
        if !rd.persisted_messages().is_empty() {
            self.send(rd.take_persisted_messages());
        }
        for rs in rd.take_read_states() {
            if let Some((w, _)) = self.reads_inflight.remove(&rs.request_ctx) {
                self.reads_ready.push((rs.index, w));
            }
        }
        let mut light = self.raw.advance(rd);
        if let Some(commit) = light.commit_index() {
            self.state.committed.fetch_max(commit, Ordering::AcqRel);
            self.core.write().hs.commit = commit;
        }
        self.send(light.take_messages());
        let committed = light.take_committed_entries();
        self.apply_entries(committed)?;
        self.raw.advance_apply();
        self.answer_reads();
        Ok(())
    }

    fn answer_reads(&mut self) {
        let applied = self.state.applied_index();
        let (ready, waiting): (Vec<_>, Vec<_>) = self.reads_ready.drain(..).partition(|(i, _)| *i <= applied);
        self.reads_ready = waiting;
        for (_, w) in ready {
            for tx in w {
                let _ = tx.send(());
            }
        }
    }

    fn apply_entries(&mut self, entries: Vec<Entry>) -> Result<(), NodeError> {
        let Some(last) = entries.last().map(|e| e.index) else {
            return Ok(());
        };
        let mut conf_changes = Vec::new();
        let mut answers = Vec::new();
        let mut peer_moves = Vec::new();
        let mut sm = self.state.sm.write();
        self.state.storage.write(|view| {
            for e in &entries {
                if e.data.is_empty() {
                    continue;
                }
                match e.get_entry_type() {
                    EntryType::EntryNormal => {
                        let req = LogRequest::decode(e.data.as_ref())
                            .map_err(|err| StorageError::Io(std::io::Error::other(err.to_string())))?;
                        let res = apply_one(&mut sm, view, &req)?;
                        if let (Some(LogOp::MemberUpdate(m)), Ok(_)) = (&req.request, &res) {
                            if let Some(url) = m.peer_urls.first() {
                                peer_moves.push((m.id, url.clone()));
                            }
                        }
                        answers.push((req.origin, req.request_id, res));
                    }
                    EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => conf_changes.push(e.clone()),
                }
            }
            view.set_applied(&sm.mvcc, last)?;
            Ok(())
        })?;
        self.state.applied.store(last, Ordering::Release);
        self.state.publish(&sm);
        let events = sm.take_events();
        let rev = sm.mvcc.current_revision();
        if is_published(sm.members.get(&self.cfg.id), &self.cfg.attrs) {
            self.published = true;
        }
        drop(sm);
        for (origin, id, res) in answers {
            if origin == self.cfg.id {
                if let Some((tx, _)) = self.pending.remove(&id) {
                    let _ = tx.send(res);
                }
            }
        }
        self.state.hub.notify(rev, &events, &*self.state);
        // A member's new peer URL (MemberUpdate).
        for (id, url) in peer_moves {
            let voter_or_learner = {
                let cs = &self.core.read().cs;
                cs.voters.contains(&id) || cs.learners.contains(&id)
            };
            if id != self.cfg.id && voter_or_learner {
                self.cfg.transport.set_peer(id, Some(url));
            }
        }
        for e in conf_changes {
            self.apply_conf_change(&e)?;
        }
        Ok(())
    }

    /// Applies a membership change: raft's configuration, the member list,
    /// the transport; answers the member that proposed it.
    fn apply_conf_change(&mut self, e: &Entry) -> Result<(), NodeError> {
        use raft::prelude::{ConfChange, ConfChangeType};
        let mut cc = ConfChange::default();
        cc.merge_from_bytes(&e.data).map_err(pb_err)?;
        let ctx = LogRequest::decode(e.context.as_ref()).unwrap_or_default();
        let cs = match self.raw.apply_conf_change(&cc) {
            Ok(cs) => cs,
            Err(err) => {
                tracing::warn!(error = %err, "membership change refused");
                if ctx.origin == self.cfg.id {
                    if let Some((tx, _)) = self.pending.remove(&ctx.request_id) {
                        let _ = tx.send(Err(EtcdError::Internal(format!("membership change: {err}"))));
                    }
                }
                return Ok(());
            }
        };
        self.wal.save_conf_state(&cs)?;
        self.core.write().cs = cs;
        let id = cc.node_id;
        let removed = cc.get_change_type() == ConfChangeType::RemoveNode;
        {
            let mut sm = self.state.sm.write();
            match (&ctx.request, removed) {
                (_, true) => {
                    sm.members.remove(&id);
                    sm.removed.insert(id);
                }
                (Some(LogOp::MemberAttrs(m)), false) => {
                    let mut m = m.clone();
                    if let Some(old) = sm.members.get(&id) {
                        // Promotion keeps the name and client URLs published.
                        m.name = old.name.clone();
                        m.client_urls = old.client_urls.clone();
                    }
                    sm.members.insert(id, m);
                }
                _ => {}
            }
            let members: Vec<Member> = sm.members.values().cloned().collect();
            self.state.storage.write(|view| {
                use crate::state_machine::AuthPersist;
                view.put_members(&members)
                    .map_err(|e| StorageError::Io(std::io::Error::other(e.to_string())))?;
                if removed {
                    view.put_removed(&sm.removed)?;
                }
                Ok(())
            })?;
        }
        if id != self.cfg.id {
            let url = if removed {
                None
            } else {
                self.state
                    .with(|sm| sm.members.get(&id).and_then(|m| m.peer_urls.first().cloned()))
            };
            self.cfg.transport.set_peer(id, url);
        }
        tracing::info!(member = format_args!("{id:x}"), change = ?cc.get_change_type(), "membership changed");
        if ctx.origin == self.cfg.id {
            if let Some((tx, _)) = self.pending.remove(&ctx.request_id) {
                let _ = tx.send(Ok(WriteResponse::Member));
            }
        }
        if removed && id == self.cfg.id {
            return Err(NodeError::Removed);
        }
        Ok(())
    }

    /// Replaces the state machine with a leader's snapshot.
    fn apply_snapshot(&mut self, snap: Snapshot) -> Result<(), NodeError> {
        let meta = snap.get_metadata().clone();
        let index = meta.index;
        let streamed = (snap.data.as_ref() == STREAMED).then(|| self.snapshots.claimed(index));
        let data = match &streamed {
            Some(_) => SnapshotData::default(),
            None => SnapshotData::decode(snap.data.as_ref()).map_err(|e| NodeError::Apply(format!("snapshot: {e}")))?,
        };
        tracing::info!(
            index,
            streamed = streamed.is_some(),
            "applying a snapshot from the leader"
        );
        let mut sm = self.state.sm.write();
        let old_rev = sm.mvcc.current_revision();
        let recorded =
            protobuf::Message::write_to_bytes(&meta).map_err(|e| NodeError::Apply(format!("snapshot: {e}")))?;
        self.state.storage.write(|view| {
            match &streamed {
                Some(path) => {
                    view.restore_file(path, index)?;
                }
                None => view.restore(&data, index)?,
            }
            view.put_raft_snapshot(&recorded)
        })?;
        self.state.storage.checkpoint()?;
        self.snapshots.applied(index);
        super::crash_point("snapshot-installed");
        *sm = self.state.storage.load().map_err(st_err)?;
        sm.take_events();
        self.state.applied.store(index, Ordering::Release);
        self.state.publish(&sm);
        drop(sm);
        {
            let mut c = self.core.write();
            c.start_at(meta.clone(), true);
            c.hs.commit = c.hs.commit.max(index);
            c.hs.term = c.hs.term.max(meta.term);
            self.wal.start_at(&c, true)?;
        }
        self.checkpoints.set_durable(index);
        // Watchers here missed the changes the snapshot brought: replay
        // them from the restored history.
        let new_rev = self.state.current_revision();
        if new_rev > old_rev {
            use crate::watch::History;
            match self.state.events(old_rev + 1, new_rev, usize::MAX) {
                Ok((events, _)) => self.state.hub.notify(new_rev, &events, &*self.state),
                Err(e) => tracing::warn!(error = %e, "watchers could not be caught up after a snapshot"),
            }
        }
        Ok(())
    }

    fn maybe_checkpoint(&mut self) -> Result<(), NodeError> {
        if self.checkpoints.due(&self.state) {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Makes the state machine durable, then compacts raft's log so that
    /// `snapshot_count` entries stay for members slightly behind.
    fn checkpoint(&mut self) -> Result<(), NodeError> {
        self.checkpoints.run(&self.state)?;
        let keep = self.cfg.snapshot_count.max(1);
        let (first, to) = {
            let c = self.core.read();
            (c.first(), self.checkpoints.durable().saturating_sub(keep))
        };
        if to >= first && to.saturating_sub(first) >= keep / 2 {
            let mut c = self.core.write();
            c.compact(to)
                .map_err(|e| NodeError::Apply(format!("raft compact: {e}")))?;
            self.wal.start_at(&c, false)?;
            tracing::info!(to, kept = keep, "raft log compacted");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, name: &str, is_learner: bool) -> Member {
        Member {
            id,
            name: name.into(),
            is_learner,
            ..Default::default()
        }
    }

    /// Members 1–3 voters (3 not started unless `all_started`), 4 a learner.
    fn members(all_started: bool) -> std::collections::BTreeMap<u64, Member> {
        [
            member(1, "a", false),
            member(2, "b", false),
            member(3, if all_started { "c" } else { "" }, false),
            member(4, "d", true),
        ]
        .into_iter()
        .map(|m| (m.id, m))
        .collect()
    }

    fn check(change: MemberChange, all_started: bool, up: &[(u64, u64)]) -> Result<(), EtcdError> {
        let now = Instant::now() + Duration::from_secs(60);
        let members = members(all_started);
        // `(id, seconds connected)`
        let since = |id: u64| {
            up.iter()
                .find(|(m, _)| *m == id)
                .map(|(_, s)| now - Duration::from_secs(*s))
        };
        Quorum {
            me: 1,
            voters: &[1, 2, 3],
            members: &members,
            connected_since: &since,
            now,
        }
        .allows(&change)
    }

    #[test]
    fn adding_a_voter_needs_started_and_connected_members() {
        let add = || MemberChange::Add(member(9, "", false));
        assert_eq!(check(add(), true, &[(2, 10), (3, 10)]), Ok(()));
        // 2 started of a future 4: no quorum.
        assert_eq!(
            check(add(), false, &[(2, 10), (3, 10)]),
            Err(EtcdError::NotEnoughStartedMembers)
        );
        // Member 3 answers, but not for long enough; or not at all.
        assert_eq!(check(add(), true, &[(2, 10), (3, 2)]), Err(EtcdError::Unhealthy));
        assert_eq!(check(add(), true, &[(2, 10)]), Err(EtcdError::Unhealthy));
        // A learner is always welcome.
        assert_eq!(check(MemberChange::Add(member(9, "", true)), false, &[]), Ok(()));
    }

    #[test]
    fn removing_a_voter_keeps_a_working_quorum() {
        // A member that is down can go.
        assert_eq!(check(MemberChange::Remove(3), true, &[(2, 10)]), Ok(()));
        // Removing a live member while another is down leaves one: refused.
        assert_eq!(
            check(MemberChange::Remove(2), true, &[(2, 10)]),
            Err(EtcdError::Unhealthy)
        );
        assert_eq!(check(MemberChange::Remove(2), true, &[(2, 10), (3, 10)]), Ok(()));
        // The remaining voters must have started: 1 and the unstarted 3.
        assert_eq!(
            check(MemberChange::Remove(2), false, &[(2, 10), (3, 10)]),
            Err(EtcdError::NotEnoughStartedMembers)
        );
        // Learners and unknown members are not the check's business.
        assert_eq!(check(MemberChange::Remove(4), false, &[]), Ok(()));
    }

    #[test]
    fn promoting_counts_the_learner_as_started() {
        assert_eq!(check(MemberChange::Promote(4), true, &[]), Ok(()));
        // 2 started voters + the learner = 3 of 4.
        assert_eq!(check(MemberChange::Promote(4), false, &[]), Ok(()));
    }
}
