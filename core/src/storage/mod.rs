//! The durable backend under the key space, on redb.
//!
//! Tables: `auth` holds the auth state (users, roles, permissions, one
//! record); `lease` maps a lease ID to its granted TTL; `kv` maps a revision (16 bytes, big-endian, so history order) to
//! one change (a flag byte, then the encoded `mvccpb.KeyValue`); `meta`
//! holds the applied log index, the current and compacted revisions, and
//! the member's identity. The key index is not stored: it is rebuilt from
//! `kv` at start, as etcd rebuilds its own.
//!
//! State-machine commits are not fsynced one by one: the log is the
//! durability point. [`Storage::write`] commits without fsync, and
//! [`Storage::checkpoint`] makes everything applied so far durable, after
//! which the log before it can be dropped.

mod maintenance;
mod transfer;

pub use maintenance::{read_snapshot_file, HashView, SnapshotFileError, SnapshotSource, SNAPSHOT_FORMAT};
pub use transfer::{SnapshotSpool, SpoolError};

use std::path::{Path, PathBuf};

use parking_lot::RwLock;
use prost::Message;
use redb::{Database, Durability, ReadOnlyTable, ReadableDatabase, ReadableTable, Table, TableDefinition};

use crate::api::concordpb::{AuthState, KvRecord, LeaseRecord, Member, Snapshot as SnapshotData, V2Event, V2Node};
use crate::api::etcdserverpb::AlarmMember;
use crate::api::mvccpb::KeyValue;
use crate::auth::AuthStore;
use crate::mvcc::{BackendError, KvRead, KvWrite, Leases, Mvcc, Record, Revision, ScanBudget};
use crate::state_machine::{AuthPersist, LeaseStore, StateMachine};
use crate::v2::{V2Persist, V2Store};

const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const LEASE: TableDefinition<i64, i64> = TableDefinition::new("lease");
/// The auth state, one record (`concordpb.AuthState`) under [`AUTH_STATE`].
const AUTH: TableDefinition<&str, &[u8]> = TableDefinition::new("auth");
/// The v2 key space: a node's key to its `concordpb.V2Node`.
const V2: TableDefinition<&str, &[u8]> = TableDefinition::new("v2");
/// The last v2 events (`concordpb.V2Event`) by index, for `waitIndex`.
const V2_EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("v2_events");
const AUTH_STATE: &str = "state";
/// The member list (`concordpb.Member` records, length-delimited) under [`AUTH_MEMBERS`].
const AUTH_MEMBERS: &str = "members";
/// The IDs of removed members (`concordpb.Member` records holding only
/// the ID, length-delimited).
const AUTH_REMOVED: &str = "removed_members";
/// The raised alarms (`etcdserverpb.AlarmMember` records, length-delimited).
const AUTH_ALARMS: &str = "alarms";
/// raft's metadata (`SnapshotMetadata`, raft's encoding) of the last
/// snapshot installed from a leader, stored with the data it brought.
const RAFT_SNAPSHOT: &str = "raft_snapshot";

const APPLIED_INDEX: &str = "applied_index";
const CURRENT_REV: &str = "current_rev";
const COMPACT_REV: &str = "compact_rev";
const MEMBER_ID: &str = "member_id";
const CLUSTER_ID: &str = "cluster_id";
const TERM: &str = "term";
const V2_INDEX: &str = "v2_index";

const FLAG_PUT: u8 = 0;
const FLAG_TOMBSTONE: u8 = 1;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// redb failed (I/O, corruption, …).
    #[error("storage: {0}")]
    Db(#[from] redb::Error),
    /// A stored record could not be decoded.
    #[error("storage: corrupt record at revision {0:?}")]
    Corrupt(Revision),
    /// A file-system operation failed.
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StorageError {
            fn from(e: $t) -> Self {
                StorageError::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

impl From<StorageError> for BackendError {
    fn from(e: StorageError) -> Self {
        BackendError(e.to_string())
    }
}

fn encode_record(rec: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + rec.kv.encoded_len());
    out.push(if rec.tombstone { FLAG_TOMBSTONE } else { FLAG_PUT });
    rec.kv.encode(&mut out).expect("a Vec grows as needed");
    out
}

fn decode_record(rev: Revision, bytes: &[u8]) -> Result<Record, StorageError> {
    let (flag, body) = bytes.split_first().ok_or(StorageError::Corrupt(rev))?;
    let kv = KeyValue::decode(body).map_err(|_| StorageError::Corrupt(rev))?;
    Ok(Record {
        kv,
        tombstone: *flag == FLAG_TOMBSTONE,
    })
}

/// What the storage remembers about the state machine and the member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// The last log index applied (and stored with the data).
    pub applied_index: u64,
    /// The member's ID (chosen at first start).
    pub member_id: u64,
    /// The cluster's ID (chosen at first start).
    pub cluster_id: u64,
    /// The term of the member's last start.
    pub term: u64,
}

/// The redb database of one member.
pub struct Storage {
    /// Shared by every transaction; taken exclusively only to defragment
    /// (redb compacts a file nobody has a transaction open on).
    db: RwLock<Database>,
    path: PathBuf,
}

/// A dump of the state machine under way (see [`Storage::dump_start`]).
pub struct Dump {
    txn: redb::ReadTransaction,
    head: SnapshotData,
}

impl Dump {
    /// Reads the stored changes and leases: the whole state machine.
    pub fn finish(self) -> Result<SnapshotData, StorageError> {
        let mut snap = self.head;
        for entry in self.txn.open_table(KV)?.iter()? {
            let (k, v) = entry?;
            snap.kvs.push(KvRecord {
                revision: k.value().to_vec(),
                record: v.value().to_vec(),
            });
        }
        for entry in self.txn.open_table(LEASE)?.iter()? {
            let (id, ttl) = entry?;
            snap.leases.push(LeaseRecord {
                id: id.value(),
                ttl: ttl.value(),
            });
        }
        Ok(snap)
    }
}

/// A consistent, read-only view of the stored changes.
pub struct ReadView {
    table: Option<ReadOnlyTable<&'static [u8], &'static [u8]>>,
}

fn scan_table(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    from: Revision,
    to: i64,
    max_bytes: usize,
) -> Result<(Vec<(Revision, Record)>, bool), BackendError> {
    let end = Revision::new(to, i64::MAX).to_bytes();
    let mut budget = ScanBudget::new(max_bytes);
    let mut out = Vec::new();
    for entry in table
        .range(from.to_bytes().as_slice()..=end.as_slice())
        .map_err(StorageError::from)?
    {
        let (k, v) = entry.map_err(StorageError::from)?;
        let rev = Revision::from_bytes(k.value()).ok_or(StorageError::Corrupt(from))?;
        let rec = decode_record(rev, v.value())?;
        if !budget.admit(rev, &rec) {
            return Ok((out, true));
        }
        out.push((rev, rec));
    }
    Ok((out, false))
}

impl KvRead for ReadView {
    fn get(&self, rev: Revision) -> Result<Option<Record>, BackendError> {
        let Some(table) = &self.table else { return Ok(None) };
        let v = table.get(rev.to_bytes().as_slice()).map_err(StorageError::from)?;
        match v {
            Some(g) => Ok(Some(decode_record(rev, g.value())?)),
            None => Ok(None),
        }
    }

    fn scan(&self, from: Revision, to: i64, max_bytes: usize) -> Result<(Vec<(Revision, Record)>, bool), BackendError> {
        match &self.table {
            Some(t) => scan_table(t, from, to, max_bytes),
            None => Ok((Vec::new(), false)),
        }
    }
}

/// The state machine's view inside one write transaction.
pub struct WriteView<'t> {
    txn: &'t redb::WriteTransaction,
    table: Table<'t, &'static [u8], &'static [u8]>,
}

impl WriteView<'_> {
    /// Records raft's metadata of the snapshot being installed, in the same
    /// transaction as its data: if the member stops before raft's log
    /// records it too, the next start completes the install from here.
    pub fn put_raft_snapshot(&mut self, meta: &[u8]) -> Result<(), StorageError> {
        let mut t = self.txn.open_table(AUTH)?;
        t.insert(RAFT_SNAPSHOT, meta)?;
        Ok(())
    }

    /// Stores the IDs of removed members.
    pub fn put_removed(&mut self, ids: &std::collections::BTreeSet<u64>) -> Result<(), StorageError> {
        let records: Vec<Member> = ids
            .iter()
            .map(|&id| Member {
                id,
                ..Default::default()
            })
            .collect();
        let mut t = self.txn.open_table(AUTH)?;
        t.insert(AUTH_REMOVED, encode_list(&records).as_slice())?;
        Ok(())
    }

    /// Records the key space's counters and the last applied log index,
    /// in the same transaction as the changes they describe.
    pub fn set_applied(&mut self, mvcc: &Mvcc, applied_index: u64) -> Result<(), StorageError> {
        let mut t = self.txn.open_table(META)?;
        t.insert(APPLIED_INDEX, applied_index)?;
        t.insert(CURRENT_REV, mvcc.current_revision() as u64)?;
        t.insert(COMPACT_REV, mvcc.compact_revision() as u64)?;
        Ok(())
    }
}

impl KvRead for WriteView<'_> {
    fn get(&self, rev: Revision) -> Result<Option<Record>, BackendError> {
        let v = self.table.get(rev.to_bytes().as_slice()).map_err(StorageError::from)?;
        match v {
            Some(g) => Ok(Some(decode_record(rev, g.value())?)),
            None => Ok(None),
        }
    }

    fn scan(&self, from: Revision, to: i64, max_bytes: usize) -> Result<(Vec<(Revision, Record)>, bool), BackendError> {
        scan_table(&self.table, from, to, max_bytes)
    }
}

impl LeaseStore for WriteView<'_> {
    fn put_lease(&mut self, id: i64, ttl: i64) -> Result<(), BackendError> {
        let mut t = self.txn.open_table(LEASE).map_err(StorageError::from)?;
        t.insert(id, ttl).map_err(StorageError::from)?;
        Ok(())
    }

    fn delete_lease(&mut self, id: i64) -> Result<(), BackendError> {
        let mut t = self.txn.open_table(LEASE).map_err(StorageError::from)?;
        t.remove(id).map_err(StorageError::from)?;
        Ok(())
    }
}

impl AuthPersist for WriteView<'_> {
    fn put_auth(&mut self, state: &AuthState) -> Result<(), BackendError> {
        let mut t = self.txn.open_table(AUTH).map_err(StorageError::from)?;
        t.insert(AUTH_STATE, state.encode_to_vec().as_slice())
            .map_err(StorageError::from)?;
        Ok(())
    }

    fn put_members(&mut self, members: &[Member]) -> Result<(), BackendError> {
        let mut t = self.txn.open_table(AUTH).map_err(StorageError::from)?;
        t.insert(AUTH_MEMBERS, encode_list(members).as_slice())
            .map_err(StorageError::from)?;
        Ok(())
    }

    fn put_alarms(&mut self, alarms: &[AlarmMember]) -> Result<(), BackendError> {
        let mut t = self.txn.open_table(AUTH).map_err(StorageError::from)?;
        t.insert(AUTH_ALARMS, encode_list(alarms).as_slice())
            .map_err(StorageError::from)?;
        Ok(())
    }
}

impl V2Persist for WriteView<'_> {
    fn put_v2_node(&mut self, node: &V2Node) -> Result<(), BackendError> {
        let mut t = self.txn.open_table(V2).map_err(StorageError::from)?;
        t.insert(node.key.as_str(), node.encode_to_vec().as_slice())
            .map_err(StorageError::from)?;
        Ok(())
    }

    fn delete_v2_node(&mut self, key: &str) -> Result<(), BackendError> {
        let mut t = self.txn.open_table(V2).map_err(StorageError::from)?;
        t.remove(key).map_err(StorageError::from)?;
        Ok(())
    }

    fn put_v2_index(&mut self, index: u64) -> Result<(), BackendError> {
        let mut t = self.txn.open_table(META).map_err(StorageError::from)?;
        t.insert(V2_INDEX, index).map_err(StorageError::from)?;
        Ok(())
    }

    fn put_v2_event(&mut self, event: &V2Event) -> Result<(), BackendError> {
        let index = event.node.as_ref().map_or(0, |n| n.modified_index);
        let mut t = self.txn.open_table(V2_EVENTS).map_err(StorageError::from)?;
        t.insert(index, event.encode_to_vec().as_slice())
            .map_err(StorageError::from)?;
        Ok(())
    }

    fn delete_v2_event(&mut self, index: u64) -> Result<(), BackendError> {
        let mut t = self.txn.open_table(V2_EVENTS).map_err(StorageError::from)?;
        t.remove(index).map_err(StorageError::from)?;
        Ok(())
    }
}

/// Records one after another, each length-delimited.
fn encode_list<M: Message>(items: &[M]) -> Vec<u8> {
    let mut buf = Vec::new();
    for m in items {
        m.encode_length_delimited(&mut buf).expect("a Vec grows as needed");
    }
    buf
}

/// The records [`encode_list`] wrote.
fn decode_list<M: Message + Default>(mut buf: &[u8]) -> Result<Vec<M>, StorageError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(M::decode_length_delimited(&mut buf).map_err(|_| StorageError::Corrupt(Revision::default()))?);
    }
    Ok(out)
}

impl WriteView<'_> {
    /// Replaces the whole state machine's stored data with `snap`, applied
    /// up to `applied_index` (a member catching up from a snapshot).
    pub fn restore(&mut self, snap: &SnapshotData, applied_index: u64) -> Result<(), StorageError> {
        self.clear_for_restore()?;
        for r in &snap.kvs {
            self.restore_kv(r)?;
        }
        for l in &snap.leases {
            self.restore_lease(l)?;
        }
        self.restore_head(snap, applied_index)
    }

    /// Drops the stored changes and leases, to restore a snapshot's.
    pub(crate) fn clear_for_restore(&mut self) -> Result<(), StorageError> {
        self.table.retain(|_, _| false)?;
        self.txn.open_table(LEASE)?.retain(|_, _| false)?;
        Ok(())
    }

    /// Stores one change of a snapshot being restored.
    pub(crate) fn restore_kv(&mut self, r: &KvRecord) -> Result<(), StorageError> {
        self.table.insert(r.revision.as_slice(), r.record.as_slice())?;
        Ok(())
    }

    /// Stores one lease of a snapshot being restored.
    pub(crate) fn restore_lease(&mut self, l: &LeaseRecord) -> Result<(), StorageError> {
        self.txn.open_table(LEASE)?.insert(l.id, l.ttl)?;
        Ok(())
    }

    /// Stores what a snapshot holds besides changes and leases (auth,
    /// members, alarms, the v2 tree, revisions), applied up to
    /// `applied_index`.
    pub(crate) fn restore_head(&mut self, snap: &SnapshotData, applied_index: u64) -> Result<(), StorageError> {
        self.put_auth(&snap.auth.clone().unwrap_or_default())
            .map_err(|e| StorageError::Io(std::io::Error::other(e.to_string())))?;
        self.put_members(&snap.members)
            .map_err(|e| StorageError::Io(std::io::Error::other(e.to_string())))?;
        self.put_alarms(&snap.alarms)
            .map_err(|e| StorageError::Io(std::io::Error::other(e.to_string())))?;
        {
            let mut v2 = self.txn.open_table(V2)?;
            v2.retain(|_, _| false)?;
            for n in &snap.v2_nodes {
                v2.insert(n.key.as_str(), n.encode_to_vec().as_slice())?;
            }
            // A member restored from a snapshot starts with no history,
            // as etcd's does.
            self.txn.open_table(V2_EVENTS)?.retain(|_, _| false)?;
        }
        let mut t = self.txn.open_table(META)?;
        t.insert(V2_INDEX, snap.v2_index)?;
        t.insert(APPLIED_INDEX, applied_index)?;
        t.insert(CURRENT_REV, snap.current_revision as u64)?;
        t.insert(COMPACT_REV, snap.compact_revision as u64)?;
        Ok(())
    }
}

impl KvWrite for WriteView<'_> {
    fn put(&mut self, rev: Revision, record: &Record) -> Result<(), BackendError> {
        self.table
            .insert(rev.to_bytes().as_slice(), encode_record(record).as_slice())
            .map_err(StorageError::from)?;
        Ok(())
    }

    fn compact(&mut self, at: i64, keep: &[Revision]) -> Result<(), BackendError> {
        let end = Revision::new(at, i64::MAX).to_bytes();
        self.table
            .retain_in(..=end.as_slice(), |k, _| {
                Revision::from_bytes(k).is_some_and(|r| keep.binary_search(&r).is_ok())
            })
            .map_err(StorageError::from)?;
        Ok(())
    }
}

impl Storage {
    /// Opens (or creates) the database file `path`, caching at most
    /// `cache_bytes` of its pages in memory (the OS page cache still holds
    /// recently read file data beyond that).
    pub fn open(path: &Path, cache_bytes: usize) -> Result<Storage, StorageError> {
        let new = !path.exists();
        let db = Database::builder().set_cache_size(cache_bytes).create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(KV)?;
        txn.open_table(META)?;
        txn.open_table(LEASE)?;
        txn.open_table(AUTH)?;
        txn.open_table(V2)?;
        txn.open_table(V2_EVENTS)?;
        txn.commit()?;
        if new {
            crate::fsync::sync_parent(path)?;
        }
        Ok(Storage {
            db: RwLock::new(db),
            path: path.to_path_buf(),
        })
    }

    /// raft's metadata of the last snapshot installed from a leader, as
    /// [`WriteView::put_raft_snapshot`] stored it.
    pub fn raft_snapshot(&self) -> Result<Option<Vec<u8>>, StorageError> {
        let txn = self.db.read_recursive().begin_read()?;
        let t = txn.open_table(AUTH)?;
        Ok(t.get(RAFT_SNAPSHOT)?.map(|v| v.value().to_vec()))
    }

    /// Reads the stored metadata.
    pub fn meta(&self) -> Result<Meta, StorageError> {
        let txn = self.db.read_recursive().begin_read()?;
        let t = txn.open_table(META)?;
        let get = |k: &str| -> Result<u64, StorageError> { Ok(t.get(k)?.map_or(0, |g| g.value())) };
        Ok(Meta {
            applied_index: get(APPLIED_INDEX)?,
            member_id: get(MEMBER_ID)?,
            cluster_id: get(CLUSTER_ID)?,
            term: get(TERM)?,
        })
    }

    /// Durably records the member's identity and term.
    pub fn set_identity(&self, member_id: u64, cluster_id: u64, term: u64) -> Result<(), StorageError> {
        let db = self.db.read_recursive();
        let txn = db.begin_write()?;
        {
            let mut t = txn.open_table(META)?;
            t.insert(MEMBER_ID, member_id)?;
            t.insert(CLUSTER_ID, cluster_id)?;
            t.insert(TERM, term)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Rebuilds the state machine: the key index from the stored changes,
    /// the leases from their table, and each live key's attachment from
    /// its latest value.
    pub fn load(&self) -> Result<StateMachine, StorageError> {
        let txn = self.db.read_recursive().begin_read()?;
        let meta = txn.open_table(META)?;
        let current = meta.get(CURRENT_REV)?.map_or(1, |g| g.value()) as i64;
        let compact = meta.get(COMPACT_REV)?.map_or(0, |g| g.value()) as i64;
        let mut mvcc = Mvcc::restore(current, compact, std::iter::empty());
        let mut attached: std::collections::HashMap<Vec<u8>, i64> = std::collections::HashMap::new();
        let kv = txn.open_table(KV)?;
        for entry in kv.iter()? {
            let (k, v) = entry?;
            let rev = Revision::from_bytes(k.value()).ok_or(StorageError::Corrupt(Revision::default()))?;
            let rec = decode_record(rev, v.value())?;
            if rec.tombstone || rec.kv.lease == 0 {
                attached.remove(&rec.kv.key);
            } else {
                attached.insert(rec.kv.key.clone(), rec.kv.lease);
            }
            mvcc.restore_one(rev, &rec);
        }
        let mut sm = StateMachine {
            mvcc,
            ..Default::default()
        };
        for entry in txn.open_table(LEASE)?.iter()? {
            let (id, ttl) = entry?;
            sm.lessor.grant(id.value(), ttl.value());
        }
        for (key, id) in attached {
            sm.lessor.attach(&key, id);
        }
        let auth = txn.open_table(AUTH)?;
        if let Some(rec) = auth.get(AUTH_STATE)? {
            let state = AuthState::decode(rec.value()).map_err(|_| StorageError::Corrupt(Revision::default()))?;
            sm.auth = AuthStore::from_pb(state);
        }
        if let Some(rec) = auth.get(AUTH_MEMBERS)? {
            for m in decode_list::<Member>(rec.value())? {
                sm.members.insert(m.id, m);
            }
        }
        if let Some(rec) = auth.get(AUTH_REMOVED)? {
            sm.removed
                .extend(decode_list::<Member>(rec.value())?.iter().map(|m| m.id));
        }
        if let Some(rec) = auth.get(AUTH_ALARMS)? {
            for a in decode_list::<AlarmMember>(rec.value())? {
                sm.alarms.insert((a.member_id, a.alarm));
            }
        }
        let v2_index = meta.get(V2_INDEX)?.map_or(0, |g| g.value());
        let mut v2_nodes = Vec::new();
        for entry in txn.open_table(V2)?.iter()? {
            let (_, v) = entry?;
            v2_nodes.push(V2Node::decode(v.value()).map_err(|_| StorageError::Corrupt(Revision::default()))?);
        }
        let mut v2_events = Vec::new();
        for entry in txn.open_table(V2_EVENTS)?.iter()? {
            let (_, v) = entry?;
            v2_events.push(V2Event::decode(v.value()).map_err(|_| StorageError::Corrupt(Revision::default()))?);
        }
        sm.v2 = V2Store::restore(v2_index, v2_nodes, v2_events);
        Ok(sm)
    }

    /// The whole state machine as committed now (for a snapshot).
    pub fn dump(&self, sm: &StateMachine) -> Result<SnapshotData, StorageError> {
        self.dump_start(sm)?.finish()
    }

    /// Starts a dump of the state machine as committed now: what is in
    /// memory is copied, and a read transaction pins the stored changes.
    /// Call it under the state machine's lock; [`Dump::finish`] reads the
    /// changes without it (on another thread if it likes).
    pub fn dump_start(&self, sm: &StateMachine) -> Result<Dump, StorageError> {
        let txn = self.db.read_recursive().begin_read()?;
        Ok(Dump {
            txn,
            head: SnapshotData {
                current_revision: sm.mvcc.current_revision(),
                compact_revision: sm.mvcc.compact_revision(),
                auth: Some(sm.auth.to_pb()),
                members: sm.members.values().cloned().collect(),
                alarms: sm.alarm_list(),
                v2_nodes: sm.v2.dump(),
                v2_index: sm.v2.index(),
                ..Default::default()
            },
        })
    }

    /// Replaces the state machine's data with `snap` at `index`, durably
    /// (a member joining a running cluster).
    pub fn install(&self, snap: &SnapshotData, index: u64) -> Result<(), StorageError> {
        let db = self.db.read_recursive();
        let txn = db.begin_write()?;
        {
            let mut view = WriteView {
                txn: &txn,
                table: txn.open_table(KV)?,
            };
            view.restore(snap, index)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// A read view of everything committed so far.
    pub fn read(&self) -> Result<ReadView, StorageError> {
        let txn = self.db.read_recursive().begin_read()?;
        let table = match txn.open_table(KV) {
            Ok(t) => Some(t),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(ReadView { table })
    }

    /// Runs `f` in one write transaction of the state machine and commits
    /// it without fsync (see [`Storage::checkpoint`]). An error from `f`
    /// aborts the transaction: nothing of it is stored.
    pub fn write<T>(&self, f: impl FnOnce(&mut WriteView<'_>) -> Result<T, StorageError>) -> Result<T, StorageError> {
        let db = self.db.read_recursive();
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::None)?;
        let out = {
            let mut view = WriteView {
                txn: &txn,
                table: txn.open_table(KV)?,
            };
            f(&mut view)?
        };
        txn.commit()?;
        Ok(out)
    }

    /// Makes every commit so far durable (one fsync).
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        let db = self.db.read_recursive();
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.set_quick_repair(true);
        txn.commit()?;
        Ok(())
    }

    /// Bytes of the file in use, as etcd's `dbSizeInUse`: the pages every
    /// table occupies (stored, metadata and fragmented bytes). It walks
    /// every table, from a read transaction: it holds up no writer, but
    /// takes a while on a large store, so it belongs off the write path.
    pub fn size_in_use(&self) -> Result<u64, StorageError> {
        fn table_bytes<K: redb::Key + 'static, V: redb::Value + 'static>(
            txn: &redb::ReadTransaction,
            def: TableDefinition<K, V>,
        ) -> Result<u64, StorageError> {
            use redb::ReadableTableMetadata;
            match txn.open_table(def) {
                Ok(t) => {
                    let st = t.stats()?;
                    Ok(st.stored_bytes() + st.metadata_bytes() + st.fragmented_bytes())
                }
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
                Err(e) => Err(e.into()),
            }
        }
        let txn = self.db.read_recursive().begin_read()?;
        Ok(table_bytes(&txn, KV)?
            + table_bytes(&txn, META)?
            + table_bytes(&txn, LEASE)?
            + table_bytes(&txn, AUTH)?
            + table_bytes(&txn, V2)?
            + table_bytes(&txn, V2_EVENTS)?)
    }

    /// Size of the database file in bytes.
    pub fn size(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }
}
