//! Raft snapshots that never sit whole in memory.
//!
//! A snapshot raft-rs hands the transport carries only its metadata and a
//! marker ([`STREAMED`]) as data; the state itself is a read transaction
//! pinned at the snapshot's index ([`SnapshotSource`]), streamed to the
//! peer as a snapshot file while the message is sent. The receiver spools
//! the file to `<data>/raft-snap/<index>.snap` (checked, durable), then
//! steps the message; applying it installs the file record by record.

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use protobuf::Message as _;
use raft::prelude::{Message as RaftMessage, MessageType, Snapshot};

use crate::api::error::EtcdError;
use crate::storage::{SnapshotSource, SnapshotSpool};

/// A streamed snapshot's `data`: the state goes beside the message.
pub(crate) const STREAMED: &[u8] = b"concord-snapshot-stream/1";

/// The snapshot offered to lagging members, and where received ones land.
pub(crate) struct Snapshots {
    dir: PathBuf,
    outgoing: Mutex<Option<(Snapshot, Arc<SnapshotSource>)>>,
}

impl Snapshots {
    /// Received snapshots go to `dir`; what an earlier run left there
    /// (spooled, never applied: the leader sends again) is removed.
    pub(crate) fn new(dir: PathBuf) -> Snapshots {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Snapshots {
            dir,
            outgoing: Mutex::new(None),
        }
    }

    /// The snapshot on offer, if it is at `request_index` or later.
    pub(crate) fn offered(&self, request_index: u64) -> Option<Snapshot> {
        let out = self.outgoing.lock();
        out.as_ref()
            .filter(|(s, _)| s.get_metadata().index >= request_index)
            .map(|(s, _)| s.clone())
    }

    /// Offers `snap` (data [`STREAMED`]), whose state `source` streams.
    pub(crate) fn offer(&self, snap: Snapshot, source: SnapshotSource) {
        *self.outgoing.lock() = Some((snap, Arc::new(source)));
    }

    /// Drops the snapshot on offer (a send finished), so its read
    /// transaction no longer pins old pages; the next one is made afresh.
    pub(crate) fn release(&self) {
        self.outgoing.lock().take();
    }

    /// The state to stream with `msg`, when it is a streamed snapshot
    /// still on offer.
    pub(crate) fn source_for(&self, msg: &[u8]) -> Option<Arc<SnapshotSource>> {
        let index = streamed_index(msg)?;
        let out = self.outgoing.lock();
        out.as_ref()
            .filter(|(s, _)| s.get_metadata().index == index)
            .map(|(_, src)| Arc::clone(src))
    }

    /// Where the state sent with a streamed snapshot at `index` is spooled.
    pub(crate) fn received(&self, index: u64) -> PathBuf {
        self.dir.join(format!("{index}.snap"))
    }

    /// Starts receiving the state sent with `msg` (refused unless it is a
    /// streamed snapshot), at most `limit` bytes. One received snapshot is
    /// kept at a time: any other is removed first, so senders cannot fill
    /// the disk with them.
    pub(crate) fn spool(&self, msg: &[u8], limit: u64) -> Result<SnapshotSpool, EtcdError> {
        let index = streamed_index(msg)
            .ok_or_else(|| EtcdError::InvalidRequest("concord: not a streamed raft snapshot".into()))?;
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        SnapshotSpool::create(&self.dir, &format!("{index}.snap"), limit)
            .map_err(|e| EtcdError::Internal(e.to_string()))
    }
}

/// The index of `msg` if it is a snapshot whose state is streamed.
fn streamed_index(msg: &[u8]) -> Option<u64> {
    let m = RaftMessage::parse_from_bytes(msg).ok()?;
    (m.get_msg_type() == MessageType::MsgSnapshot && m.get_snapshot().data.as_ref() == STREAMED)
        .then(|| m.get_snapshot().get_metadata().index)
}
